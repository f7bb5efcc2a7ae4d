"""rollup.things on the real InfluxDB: the worker persists a Thing id for every known station
once, in the rollups' retention policy, heals a table two writers broke, and says plainly
when the policy cannot hold them."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from civicair.influx import Influx, InfluxRejected, series
from civicair.schema import storage
from civicair.schema.errors import ContractError
from rollup import things
from rollup.settings import RollupSettings
from rollup.worker import Worker
from tests.conftest import DATABASE
from tests.rollup.conftest import T0


def _station(influx: Influx, station: str) -> None:
    influx.write(storage.meta_to_line(station, {"name": station.upper(), "lat": 25.0, "lon": 121.5}, T0))


def _reading(influx: Influx, station: str) -> None:
    influx.write(f"pm,station={station},sensor=pms5003,channel=a pm25=4.5,pm25_atm=5.0,qc=0i,n=20i {T0}\n"
                 .encode())


def _table(influx: Influx, rp: str | None = None) -> dict[str, int]:
    where = f'"{rp}"."sta_thing"' if rp else '"sta_thing"'
    (result,) = influx.query(f'SELECT "id" FROM {where} GROUP BY "station"')
    return {s["tags"]["station"]: s["values"][0][1] for s in series(result)}


def test_thing_ids_lines_are_one_point_per_station_at_time_0():
    assert storage.thing_ids_lines({"lab-2": 2, "lab-1": 1}) == \
        b"sta_thing,station=lab-1 id=1i 0\nsta_thing,station=lab-2 id=2i 0\n"
    with pytest.raises(ContractError):
        storage.thing_ids_lines({"Lab 1": 1})
    for bad in (0, 2**27, True, 1.0):
        with pytest.raises(ValueError, match="Thing id"):
            storage.thing_ids_lines({"lab-1": bad})  # type: ignore[dict-item]


def test_sync_persists_each_known_station_once_and_logs_it(influx: Influx, caplog) -> None:
    caplog.set_level(logging.INFO, logger="civicair.rollup")
    assert things.sync(influx, None) == {}  # an empty database: nothing to number
    _station(influx, "tw-b")
    _reading(influx, "tw-a")  # readings only, no meta yet: a station all the same
    assert things.sync(influx, None) == {"tw-a": 1, "tw-b": 2}
    assert _table(influx) == {"tw-a": 1, "tw-b": 2}
    assert [r.message for r in caplog.records].count(
        "assigned SensorThings Thing ids to 2 stations (tw-a=1, tw-b=2)") == 1
    caplog.clear()
    assert things.sync(influx, None) == {}  # nothing new: no write, no log line
    assert not caplog.records
    _reading(influx, "tw-0")  # sorts first, arrives last: the next number
    assert things.sync(influx, None) == {"tw-0": 3}
    assert _table(influx) == {"tw-a": 1, "tw-b": 2, "tw-0": 3}


def test_sync_heals_two_stations_on_one_id(influx: Influx) -> None:
    for s in ("lab-1", "lab-2"):
        _reading(influx, s)
    influx.write(b"sta_thing,station=lab-2 id=1i 0\nsta_thing,station=lab-1 id=1i 0\n")
    assert things.sync(influx, None) == {"lab-2": 2}
    assert _table(influx) == {"lab-1": 1, "lab-2": 2}


def test_worker_keeps_the_table_in_the_rollup_policy_and_the_api_reads_it_there(influx: Influx, influxdb) -> None:
    influx.query(f'CREATE RETENTION POLICY "forever" ON "{DATABASE}" DURATION INF REPLICATION 1')
    for s in ("lab-a", "lab-z"):
        _station(influx, s)
        _reading(influx, s)
    # lab-z was numbered first (an older deployment); lab-a arrives after it
    influx.write(b"sta_thing,station=lab-z id=1i 0\n", rp="forever")
    Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_rp="forever",
                          rollup_metrics_port=0), influx).cycle()
    assert _table(influx, "forever") == {"lab-z": 1, "lab-a": 2}
    assert _table(influx) == {}  # nothing in the default (raw) policy
    with TestClient(create_app(ApiSettings(influx_url=influxdb.url, influx_db=DATABASE,
                                           rollup_rp="forever"))) as client:
        assert client.get("/sta/v1.1/Things(1)").json()["properties"]["station"] == "lab-z"
        assert client.get("/sta/v1.1/Things(2)/name/$value").text == "LAB-A"


def test_a_policy_that_expires_points_is_a_clear_error(influx: Influx) -> None:
    influx.query(f'CREATE RETENTION POLICY "week" ON "{DATABASE}" DURATION 7d REPLICATION 1')
    _reading(influx, "lab-1")
    with pytest.raises(InfluxRejected, match="retention policy week, which must keep points forever"):
        things.sync(influx, "week")
