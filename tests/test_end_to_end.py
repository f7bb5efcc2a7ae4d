"""A reading travels from a serial sensor to the open API, on a real broker and database.

Simulated PMS5003 on a pseudo-terminal (genuine 32-byte frames) -> bridge process
-> Mosquitto -> ingest process -> InfluxDB -> API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from firmware_bridge.simulator import PtySimulator
from tests.conftest import DATABASE, wait_until
from tests.procs import bridge_args, server_env, spawn, stop

KNOWN = {
    "pm1_cf1": 3, "pm25_cf1": 12, "pm10_cf1": 21, "pm1_atm": 2, "pm25_atm": 11, "pm10_atm": 19,
    "n0_3": 1500, "n0_5": 420, "n1_0": 70, "n2_5": 9, "n5_0": 3, "n10_0": 1,
}
WINDOW = 2


@pytest.fixture
def pipeline(tmp_path, mosquitto, influxdb):
    sim = PtySimulator("pms5003", rate_hz=10, values=KNOWN, link=tmp_path / "ttyPMS")
    sim.start()
    log = tmp_path / "processes.log"
    env = server_env(mosquitto, influxdb, tmp_path)
    ingest = spawn(["ingest"], env, log)
    bridge = spawn(bridge_args("e2e-1", tmp_path / "ttyPMS", tmp_path / "spool.sqlite3", WINDOW), env, log)
    api = TestClient(create_app(ApiSettings(influx_url=influxdb.url, influx_db=DATABASE)))
    with api:
        yield api
    for proc in (bridge, ingest):
        stop(proc)
    sim.close()
    print((tmp_path / "processes.log").read_text()[-3000:])


@pytest.mark.slow  # ~10 s: bridge on a pseudo-terminal, broker, ingest, InfluxDB, API
def test_known_frames_arrive_through_the_api_averaged_per_window(pipeline):
    api = pipeline
    now = datetime.now(UTC)
    params = {"from": (now - timedelta(minutes=5)).isoformat(),
              "to": (now + timedelta(minutes=5)).isoformat()}

    def readings():
        r = api.get("/v1/stations/e2e-1/measurements", params=params)
        assert r.status_code == 200, r.text
        return r.json()["results"] if len(r.json()["results"]) >= 4 else None

    results = wait_until(readings, timeout=60, message="4 windows of readings through the API")
    for item in results:
        for name, value in KNOWN.items():
            assert item[name] == value, (name, item)
        assert item["station"] == "e2e-1" and item["sensor"] == "pms5003" and item["channel"] == "a"
        assert item["pm25"] == KNOWN["pm25_atm"]
        assert item["window"] == WINDOW and 1 <= item["n"] <= 10 * WINDOW + 2
        ts = datetime.fromisoformat(item["time"].replace("Z", "+00:00"))
        assert ts.timestamp() % WINDOW == 0  # window ends are epoch-aligned
    # Full windows in the middle hold about rate × window frames.
    assert max(item["n"] for item in results) >= 10 * WINDOW - 2
    seqs = [item["seq"] for item in results]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none missing

    stations = api.get("/v1/stations").json()
    assert [s["id"] for s in stations["results"]] == ["e2e-1"]
    assert stations["meta"]["licence"]


def test_unknown_station_and_reversed_range_are_clear_client_errors(pipeline):
    api = pipeline
    assert api.get("/v1/stations/nobody/measurements").json()["results"] == []
    r = api.get("/v1/stations/e2e-1/measurements", params={"from": "2026-01-02", "to": "2026-01-01"})
    assert r.status_code == 422 and "before" in r.text
    r = api.get("/v1/stations/x'%20OR%20'1'='1/measurements")
    assert r.status_code in (404, 422)
