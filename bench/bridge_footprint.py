"""Bridge footprint: peak RSS and CPU share with two simulated 1 Hz sensors for a minute.

A proxy for a Pi Zero 2 W (goal: under 40 MB and under 2 % of one core). The
bridge runs as its own process against a real Mosquitto; the simulators run in
other processes so they are not counted. For context it also measures, in the
same run, a bare Python process that only imports paho-mqtt and pyserial.

    python bench/bridge_footprint.py [--seconds 60] [--window 60] [--confirm]

``--confirm`` also runs InfluxDB and the ingest (their own processes, not counted), so
the bridge gets stored confirmations (docs/delivery.md): it subscribes, marks readings
sent on PUBACK and deletes them on each confirmation.

Last line: ``rss_mb=X cpu_pct=Y``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from civicair.services import InfluxDB, Mosquitto  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--window", type=int, default=60, help="bridge averaging window, s (default 60)")
    ap.add_argument("--confirm", action="store_true",
                    help="run InfluxDB and the ingest too, so the bridge gets stored confirmations")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="civicair-bench-"))
    broker = Mosquitto(tmp / "mosquitto").start()
    influxdb = InfluxDB(tmp / "influxdb").start() if args.confirm else None
    procs = []
    try:
        if influxdb is not None:
            env = {**os.environ, "CIVICAIR_MQTT_HOST": broker.host, "CIVICAIR_MQTT_PORT": str(broker.port),
                   "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": "bench",
                   "CIVICAIR_DEADLETTER_PATH": str(tmp / "dead.jsonl"), "CIVICAIR_METRICS_PORT": "0"}
            procs.append(subprocess.Popen([sys.executable, "-m", "ingest"], env=env,
                                          stdout=open(tmp / "ingest.log", "wb"), stderr=subprocess.STDOUT))
        for ch in ("a", "b"):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "civicair", "simulate", "--sensor", "pms5003", "--rate", "1",
                 "--link", str(tmp / f"tty{ch}"), "--seed", ch], stdout=subprocess.DEVNULL))
        for ch in ("a", "b"):
            while not (tmp / f"tty{ch}").exists():
                time.sleep(0.05)
        cfg = tmp / "bridge.toml"
        cfg.write_text(f"""station = "bench-1"
clock = "trusted"
[mqtt]
host = "127.0.0.1"
port = {broker.port}
[[sensor]]
port = "{tmp / 'ttya'}"
channel = "a"
[[sensor]]
port = "{tmp / 'ttyb'}"
channel = "b"
[sampling]
window = {args.window}
warmup = 0
[spool]
path = "{tmp / 'spool.sqlite3'}"
""")
        bare = subprocess.Popen([sys.executable, "-c", "import paho.mqtt.client, serial, sqlite3, time; "
                                 "time.sleep(3600)"])
        bridge = subprocess.Popen([sys.executable, "-m", "firmware_bridge", "--config", str(cfg)],
                                  stdout=open(tmp / "bridge.log", "wb"), stderr=subprocess.STDOUT)
        procs += [bare, bridge]
        time.sleep(3)  # start-up (imports) is not the steady state a Pi lives in
        cpu0, t0 = cpu_seconds(bridge.pid), time.monotonic()
        while (elapsed := time.monotonic() - t0) < args.seconds:
            time.sleep(min(10, args.seconds - elapsed))
            print(f"  {elapsed:4.0f} s  rss_peak={peak_rss_mb(bridge.pid):.1f} MB", flush=True)
        cpu_pct = 100 * (cpu_seconds(bridge.pid) - cpu0) / (time.monotonic() - t0)
        rss = peak_rss_mb(bridge.pid)
        print(f"baseline: bare python with paho-mqtt + pyserial imported: {peak_rss_mb(bare.pid):.1f} MB")
        print(f"bridge: peak RSS {rss:.1f} MB, CPU {cpu_pct:.2f} % of one core over {args.seconds:.0f} s "
              f"(goal < 40 MB, < 2 %)")
        if args.confirm:
            confirmed = "the server confirms stored readings" in (tmp / "bridge.log").read_text()
            print(f"stored confirmations: {'received' if confirmed else 'NONE received'}")
        print(f"rss_mb={rss:.1f} cpu_pct={cpu_pct:.2f}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        broker.stop()
        if influxdb is not None:
            influxdb.stop()


if __name__ == "__main__":
    main()
