"""Station meta and status: from their retained topics to measurement ``station``."""

from __future__ import annotations

import orjson
import pytest

from civicair.influx import series
from civicair.schema import contract
from civicair.schema.errors import ContractError
from ingest.meta import MetaError, meta_line, status_line
from tests.conftest import wait_until

BRIDGE_META = {"name": "Lab roof", "lat": 52, "lon": 4.35, "sensors": {"a": "pms5003", "b": "pms5003"},
               "window": 60, "duty_period": None, "software": "civicair 0.1.0"}


def test_meta_payload_becomes_the_station_point_the_api_reads():
    line = meta_line("lab-1", orjson.dumps(BRIDGE_META), 1_735_689_600)
    assert line.startswith(b'station,station=lab-1 name="Lab roof",lat=52.0,lon=4.35,')
    assert b'sensors_a="pms5003"' in line and line.endswith(b" 1735689600\n")


@pytest.mark.parametrize("payload, reason", [
    pytest.param(b"{broken", "not valid JSON", id="not json"),
    pytest.param(b"[1, 2]", "JSON object", id="not an object"),
    pytest.param(b'{"lat": 91, "lon": 0}', "lat", id="latitude off the globe"),
])
def test_bad_meta_is_refused_with_a_reason(payload, reason):
    with pytest.raises(MetaError, match=reason):
        meta_line("lab-1", payload, 1)


def test_status_is_online_or_offline():
    assert status_line("lab-1", b"online", 5) == b'station,station=lab-1 status="online" 5\n'
    assert status_line("lab-1", b"offline\n", 5) == b'station,station=lab-1 status="offline" 5\n'
    with pytest.raises(ContractError, match="online"):
        status_line("lab-1", b"on fire", 5)
    with pytest.raises(ContractError, match="station id"):
        status_line("Lab 1", b"online", 5)


def _station_row(influx, station: str) -> dict | None:
    (result,) = influx.query(f"SELECT * FROM \"station\" WHERE \"station\" = '{station}'")
    rows = series(result)
    if not rows:
        return None
    columns, values = rows[0]["columns"], rows[0]["values"]
    # The newest value of each field, as the API's last() would give it.
    latest: dict = {}
    for row in values:
        latest.update({c: v for c, v in zip(columns, row, strict=True) if v is not None})
    return latest


def test_retained_meta_and_status_reach_the_station_measurement(influx, spawn_ingest, publisher):
    # Published (retained) before the ingest exists, as a bridge that booted first does.
    publisher.publish(contract.meta_topic("meta-1"), orjson.dumps(BRIDGE_META), retain=True)
    publisher.publish(contract.status_topic("meta-1"), b"online", retain=True)
    publisher.settle()
    ingest = spawn_ingest()

    row = wait_until(lambda: _station_row(influx, "meta-1"), timeout=30, message="station meta stored")
    row = wait_until(lambda: (r := _station_row(influx, "meta-1")) and "status" in r and "name" in r and r,
                     timeout=30, message="meta and status stored")
    assert row["name"] == "Lab roof" and row["lat"] == 52.0 and row["sensors_a"] == "pms5003"
    assert row["status"] == "online"

    publisher.publish(contract.status_topic("meta-1"), b"offline", retain=True)
    publisher.settle()
    wait_until(lambda: ingest.metric("civicair_ingest_written_station_points_total") >= 3, timeout=30,
               message="the status change written")
    # Two points may share a second; the newest status is what counts.
    (result,) = influx.query("SELECT last(\"status\") FROM \"station\" WHERE \"station\" = 'meta-1'")
    assert series(result)[0]["values"][0][1] == "offline"
    assert ingest.metric('civicair_ingest_deadlettered_total{reason="meta"}') == 0
