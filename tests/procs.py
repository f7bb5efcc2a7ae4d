"""Our services as separate processes, as they run in production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from civicair.services import new_session_dying_with_parent
from tests.conftest import DATABASE


def server_env(mosquitto, influxdb, tmp_path: Path) -> dict[str, str]:
    return {"CIVICAIR_MQTT_HOST": mosquitto.host, "CIVICAIR_MQTT_PORT": str(mosquitto.port),
            "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE,
            "CIVICAIR_DEADLETTER_PATH": str(tmp_path / "dead.jsonl"), "CIVICAIR_BATCH_AGE_S": "0.2",
            "CIVICAIR_METRICS_PORT": "0"}


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", *args], env={**os.environ, **env},
                                stdout=log, stderr=subprocess.STDOUT, preexec_fn=new_session_dying_with_parent)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
    """Signal the process group, wait, SIGKILL after ``timeout``; the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def bridge_args(station: str, port: Path, spool: Path, window: int = 1, *extra: str) -> list[str]:
    return ["firmware_bridge", "--station", station, "--port", str(port), "--window", str(window),
            "--warmup", "0", "--clock", "trusted", "--spool", str(spool), *extra]
