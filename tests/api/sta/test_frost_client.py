"""A real SensorThings client, frost-sta-client (FROST's Python client, requests-based),
against the API served by uvicorn, on InfluxDB filled by the real ingest process from
readings published to the real broker.

frost-sta-client runs in the shared venv, where urllib3-future replaced urllib3
(grafana-client pulls niquests); requests works on it for plain GETs like these.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import frost_sta_client as frost
import httpx
import orjson
import pytest
import requests

from civicair.schema import contract
from civicair.services import free_port, new_session_dying_with_parent
from tests import procs
from tests.conftest import DATABASE, wait_until
from tests.ingest.conftest import IngestProcess, Publisher

READINGS = 250
WINDOW = 60


@pytest.fixture
def served(tmp_path, mosquitto, influxdb, influx):
    """ingest + uvicorn; 250 one-minute readings of two stations, ending an hour ago."""
    env = {"CIVICAIR_MQTT_HOST": mosquitto.host, "CIVICAIR_MQTT_PORT": str(mosquitto.port),
           "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE,
           "CIVICAIR_DEADLETTER_PATH": str(tmp_path / "dead.jsonl"), "CIVICAIR_METRICS_HOST": "127.0.0.1",
           "CIVICAIR_METRICS_PORT": str(free_port()), "CIVICAIR_BATCH_AGE_S": "0.2",
           "CIVICAIR_MQTT_CLIENT_ID": "ingest-sta"}
    ingest = IngestProcess(env, tmp_path / "ingest.log").start()
    end = (int(time.time()) - 3600) // WINDOW * WINDOW
    t0 = end - WINDOW * (READINGS - 1)
    pub = Publisher(mosquitto.host, mosquitto.port, client_id="sta-publisher")
    for station, lat, lon in (("tw-1", 25.0330, 121.5654), ("tw-2", 24.1477, 120.6736)):
        pub.publish(contract.meta_topic(station), orjson.dumps(
            {"name": station.upper(), "lat": lat, "lon": lon, "sensors": {"a": "pms5003"}}), retain=True)
        batch = [{"v": 1, "station": station, "sensor": "pms5003", "channel": "a", "ts": t0 + WINDOW * i,
                  "window": WINDOW, "n": 26, "seq": i, "boot": 1, "synced": True, "pm1_atm": 2.0,
                  "pm25_atm": 5.0 + i % 40, "pm10_atm": 19.0, "pm1_cf1": 2.0, "pm25_cf1": 5.0, "pm10_cf1": 19.0}
                 for i in range(READINGS)]
        for k in range(0, READINGS, 50):
            pub.publish(contract.readings_topic(station), orjson.dumps(batch[k:k + 50]))
    pub.settle()

    def stored():
        (r,) = influx.query('SELECT count("seq") FROM "pm"')
        rows = r.get("series") or []
        return rows and rows[0]["values"][0][1] == 2 * READINGS
    wait_until(stored, timeout=60, message=f"readings stored; ingest log:\n{ingest.log_tail()}")
    wait_until(lambda: influx.query('SELECT count("name") FROM "station"')[0].get("series"), timeout=30,
               message="station meta stored")

    port = free_port()
    with open(tmp_path / "api.log", "ab") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env={**os.environ, "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE},
            cwd=Path(__file__).resolve().parents[3], stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=new_session_dying_with_parent)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    try:
        wait_until(up, timeout=30, message="uvicorn serving")
        yield f"{base}/sta/v1.1", t0
    finally:
        procs.stop(api)
        ingest.stop()
        pub.close()


def test_frost_client_lists_pages_filters_expands_and_finds(served):
    url, t0 = served
    service = frost.SensorThingsService(url)

    things = list(service.things().query().list())
    assert sorted(t.name for t in things) == ["TW-1", "TW-2"]

    datastreams = service.datastreams().query().filter("name eq 'PM2.5'").list()
    pm25 = next(d for d in datastreams if d.properties["station"] == "tw-1")
    # every Observation of the Datastream, across pages (100 a page: three nextLinks)
    observations = list(pm25.get_observations().query().top(100).list())
    assert len(observations) == READINGS
    assert len({o.id for o in observations}) == READINGS
    times = [o.result_time for o in observations]
    assert times == sorted(times)

    # its orderby() writes the direction in capitals ("DESC" by default): newest first, across pages
    newest = list(pm25.get_observations().query().orderby("phenomenonTime").top(100).list())
    assert [o.id for o in newest] == [o.id for o in reversed(observations)]
    by_result = list(pm25.get_observations().query().orderby("result", "ASC").top(100).list())
    assert [o.result for o in by_result] == sorted(o.result for o in observations)

    # a time range on phenomenonTime
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 60 * 10))
    stop = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 60 * 20))
    ranged = list(pm25.get_observations().query()
                  .filter(f"phenomenonTime ge {start} and phenomenonTime lt {stop}").list())
    assert [o.result for o in ranged] == [5.0 + i % 40 for i in range(10, 20)]

    # the latest Observation, expanded
    latest = service.datastreams().query().filter("name eq 'PM2.5'") \
        .expand("Observations($orderby=phenomenonTime desc;$top=1)").list()
    for ds in latest:
        (obs,) = list(ds.observations)
        assert obs.result == 5.0 + (READINGS - 1) % 40

    found = service.things().find(things[0].id)
    assert found.name == things[0].name
    # This client raises for a 404 (its docs promise None in some versions): either way, nothing found.
    try:
        missing = service.things().find(9223372036854775807)
    except requests.exceptions.HTTPError as exc:
        assert exc.response.status_code == 404 and exc.response.json()["message"]
    else:
        assert missing is None
