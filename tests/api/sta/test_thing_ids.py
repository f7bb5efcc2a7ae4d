"""Ids users can type, end to end: stations through the real ingest into a fresh InfluxDB,
then ``/Things(1)`` and its Datastreams answer; the ids stay what they were after an API
restart, after the rollup worker persisted them and when a new station arrives."""

from __future__ import annotations

import logging

import orjson

from civicair.influx import Influx, series
from civicair.schema import contract
from rollup.settings import RollupSettings
from rollup.worker import Worker
from tests.api.conftest import make_client
from tests.conftest import DATABASE, wait_until
from tests.ingest.conftest import reading

READINGS = 5


def _publish(pub, influx: Influx, station: str, name: str) -> None:
    pub.publish(contract.meta_topic(station), orjson.dumps(
        {"name": name, "lat": 25.03, "lon": 121.56, "sensors": {"a": "pms5003"}}), retain=True)
    pub.publish(contract.readings_topic(station), orjson.dumps([reading(station, i) for i in range(READINGS)]))
    pub.settle()

    def stored() -> bool:
        (pm, meta) = influx.query(f"SELECT count(\"seq\") FROM \"pm\" WHERE \"station\" = '{station}'; "
                                  f"SELECT count(\"name\") FROM \"station\" WHERE \"station\" = '{station}'")
        return bool(series(pm)) and series(pm)[0]["values"][0][1] == READINGS and bool(series(meta))
    wait_until(stored, timeout=60, message=f"{station} stored")


def _things(influxdb) -> dict[str, int]:
    """Station -> Thing id, from a freshly started API (nothing cached)."""
    with make_client(influxdb) as client:
        return {t["properties"]["station"]: t["@iot.id"] for t in client.get("/sta/v1.1/Things").json()["value"]}


def _table(influx: Influx) -> dict[str, int]:
    (result,) = influx.query('SELECT "id" FROM "sta_thing" GROUP BY "station"')
    return {s["tags"]["station"]: s["values"][0][1] for s in series(result)}


def test_things_1_and_2_answer_and_keep_their_ids_through_restarts_and_the_worker(
        influx, influxdb, spawn_ingest, publisher, caplog):
    spawn_ingest()
    for station, name in (("tw-b", "Taichung"), ("tw-a", "Taipei")):
        _publish(publisher, influx, station, name)

    with make_client(influxdb) as client:
        thing = client.get("/sta/v1.1/Things(1)")
        assert thing.status_code == 200 and thing.json()["properties"]["station"] == "tw-a"
        value = client.get("/sta/v1.1/Things(1)/name/$value")
        assert value.status_code == 200 and value.text == "Taipei"
        # Thing 1, channel a: PM2.5 is Datastream 1, PM2.5 (raw) 2; Thing 2's start at 17
        assert client.get("/sta/v1.1/Things(1)/Datastreams(1)").json()["name"] == "PM2.5"
        assert client.get("/sta/v1.1/Things(1)/Datastreams(2)").json()["name"] == "PM2.5 (raw)"
        assert client.get("/sta/v1.1/Things(2)/Datastreams(17)").json()["properties"]["station"] == "tw-b"
        assert client.get("/sta/v1.1/Things(1)/Datastreams(17)").status_code == 404  # not Thing 1's
        obs = client.get("/sta/v1.1/Things(1)/Datastreams(2)/Observations")
        assert obs.status_code == 200 and len(obs.json()["value"]) == READINGS
        assert client.get("/sta/v1.1/Locations(1)/Things").json()["value"][0]["@iot.id"] == 1
        assert client.get("/sta/v1.1/FeaturesOfInterest(1)").json()["properties"]["station"] == "tw-a"

    provisional = _things(influxdb)
    assert provisional == {"tw-a": 1, "tw-b": 2}
    assert _table(influx) == {}  # the API only reads
    assert _things(influxdb) == provisional  # an API restart: the same ids

    caplog.set_level(logging.INFO, logger="civicair.rollup")
    worker = Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0,
                                   rollup_quiet_s=0), influx)
    worker.cycle()
    assert _table(influx) == provisional  # the worker persisted what the API showed
    assert any(r.message.startswith("assigned SensorThings Thing ids to 2 stations") for r in caplog.records)
    assert _things(influxdb) == provisional

    # A new station whose id sorts first gets the next number; the others keep theirs,
    # shown by the API before the worker persists it, and after.
    _publish(publisher, influx, "tw-0", "Kaohsiung")
    assert _things(influxdb) == {"tw-a": 1, "tw-b": 2, "tw-0": 3}
    worker.cycle()
    assert _table(influx) == {"tw-a": 1, "tw-b": 2, "tw-0": 3}
    assert _things(influxdb) == {"tw-a": 1, "tw-b": 2, "tw-0": 3}
    with make_client(influxdb) as client:
        assert client.get("/sta/v1.1/Things(3)/name/$value").text == "Kaohsiung"
        assert client.get("/sta/v1.1/Datastreams(33)/Thing").json()["@iot.id"] == 3


def test_a_named_rollup_policy_not_created_yet_still_serves_things(influxdb, influx, caplog):
    """`CIVICAIR_ROLLUP_RP` names a policy `civicair rollup init` has not created: the Thing id
    table cannot be read, so the stations are numbered as the worker will number them."""
    from tests.api.sta.conftest import seed

    seed(influx)
    with caplog.at_level(logging.WARNING, logger="civicair.api.sta"), \
            make_client(influxdb, rollup_rp="not_created_yet") as client:
        r = client.get("/sta/v1.1/Things")
        assert r.status_code == 200, r.text
        got = {t["properties"]["station"]: t["@iot.id"] for t in r.json()["value"]}
        assert got == {"lab-1": 1, "lab-2": 2, "lab-3": 3}
        assert client.get("/sta/v1.1/Things(2)/Datastreams").json()["value"]
    assert "not_created_yet" in caplog.text
