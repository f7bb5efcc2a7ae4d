"""``civicair rollup init`` on InfluxDB 1.x: raw readings get their retention, the rollups
a policy kept forever; worker and API then write and read the rollups there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from civicair.influx import Influx, series
from civicair.services import free_port
from rollup.settings import RollupSettings
from rollup.worker import Worker
from tests import procs
from tests.conftest import DATABASE, wait_until
from tests.rollup.conftest import metrics_of


def _init(influxdb, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollup", "init"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE,
                               **env})


def _policies(influx: Influx) -> dict[str, tuple[str, bool]]:
    (result,) = influx.query(f'SHOW RETENTION POLICIES ON "{DATABASE}"')
    return {r[0]: (r[1], r[4]) for s in series(result) for r in s["values"]}


def test_init_sets_raw_retention_and_a_forever_policy_for_rollups(influx: Influx, influxdb) -> None:
    done = _init(influxdb, CIVICAIR_RAW_RETENTION="400d", CIVICAIR_ROLLUP_RP="forever")
    assert done.returncode == 0, done.stderr
    assert _policies(influx) == {"autogen": ("9600h0m0s", True), "forever": ("0s", False)}
    again = _init(influxdb, CIVICAIR_RAW_RETENTION="400d", CIVICAIR_ROLLUP_RP="forever")
    assert again.returncode == 0 and "ALTER" not in again.stdout and "CREATE" not in again.stdout

    day = int(time.time()) // 86400 * 86400 - 3 * 86400  # inside the 400 days the raw policy keeps
    now_ish = day + 3600
    influx.write(f"pm,station=rp-1,sensor=pms5003,channel=a pm25=4.5,qc=0i,n=20i {now_ish}\n".encode())
    Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_rp="forever",
                          rollup_metrics_port=0), influx).cycle()
    (result,) = influx.query('SELECT "pm25_mean" FROM "forever"."pm_1h"')
    assert series(result)[0]["values"][0][1] == 4.5
    with TestClient(create_app(ApiSettings(influx_url=influxdb.url, influx_db=DATABASE,
                                           rollup_rp="forever"))) as client:
        body = client.get(f"/v1/stations/rp-1/measurements?interval=1d&from={_iso(day)}"
                          f"&to={_iso(day + 86400)}").json()
    assert body["meta"]["source"] == "rollup_1d" and body["results"][0]["pm25_mean"] == 4.5


def test_init_refuses_a_raw_retention_without_a_policy_for_the_rollups(influx: Influx, influxdb) -> None:
    done = _init(influxdb, CIVICAIR_RAW_RETENTION="30d")
    assert done.returncode == 1 and "CIVICAIR_ROLLUP_RP" in done.stderr
    assert _policies(influx) == {"autogen": ("0s", True)}


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_worker_whose_policy_is_missing_says_once_to_run_init(influx: Influx, influxdb, tmp_path: Path) -> None:
    """``civicair rollup run`` names the policy it writes to; while that policy is missing
    every pass fails, but the log says so (and how to fix it) once, not once per pass."""
    port = free_port()
    env = {"CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE, "CIVICAIR_ROLLUP_RP": "forever",
           "CIVICAIR_ROLLUP_INTERVAL_S": "0.2", "CIVICAIR_ROLLUP_METRICS_PORT": str(port),
           "CIVICAIR_ROLLUP_METRICS_HOST": "127.0.0.1", "CIVICAIR_ROLLUP_NICE": "0"}
    log_path = tmp_path / "rollup.log"
    worker = procs.spawn(["rollup", "run"], env, log_path)
    try:
        wait_until(lambda: metrics_of(port).get("civicair_rollup_failures_total", 0) >= 3, timeout=60,
                   message="three failed passes")
        assert _init(influxdb, CIVICAIR_ROLLUP_RP="forever").returncode == 0
        wait_until(lambda: metrics_of(port).get("civicair_rollup_cycles_total", 0) >= 1, timeout=60,
                   message="a pass once the policy exists")
    finally:
        assert procs.stop(worker) == 0
    lines = log_path.read_text().splitlines()
    assert any("rollups written to retention policy forever" in line for line in lines[:3]), lines
    failed = [line for line in lines if "rollup pass failed" in line]
    assert len(failed) == 1, lines
    assert "retention policy not found" in failed[0] and "run `civicair rollup init`" in failed[0]
    assert sum("rollup passes succeed again" in line for line in lines) == 1
