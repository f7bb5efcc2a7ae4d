"""Archive tests: days built from a real InfluxDB, fed through the real ingest where the
content matters (fixtures of tests/ingest/conftest.py), by line protocol where only the
bookkeeping does."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from api.settings import ApiSettings
from civicair.schema import contract
from civicair.services import InfluxDB
from tests.conftest import DATABASE
from tests.ingest.conftest import ingest_env, publisher, spawn_ingest  # noqa: F401 - fixtures

#: 2025-01-01T00:00:00Z (long final: no late reading can reach it any more).
T0 = 1_735_689_600
DAY = 86_400
DAY1, DAY2 = date(2025, 1, 1), date(2025, 1, 2)
#: A fixed "today" for builds, well after the seeded days.
TODAY = date(2025, 3, 1)


def reading(station: str, ts: int, seq: int, *, sensor: str = "pms5003", channel: str = "a",
            **values: float) -> dict:
    base = {"v": 1, "station": station, "sensor": sensor, "channel": channel, "ts": ts, "window": 60,
            "n": 26, "seq": seq, "boot": 1, "synced": True}
    if sensor == "sds011":
        measured = {"pm25_atm": 8.0 + seq % 4, "pm10_atm": 15.0 + seq % 3}
    else:
        measured = {"pm1_cf1": 3.0, "pm25_cf1": 10.0 + seq % 7, "pm10_cf1": 21.0, "pm1_atm": 2.0,
                    "pm25_atm": 9.0 + seq % 5, "pm10_atm": 19.0, "n0_3": 1500.0, "n0_5": 420.0, "n1_0": 70.0,
                    "n2_5": 9.0, "n5_0": 3.0, "n10_0": 1.0, "rh": 40.0 + seq % 30, "temp": 21.5}
    return base | measured | values


def day_readings(day_start: int, count: int = 6) -> list[dict]:
    """Two stations, one with two channels (and window extremes), one SDS011 without humidity."""
    out = []
    for i in range(count):
        ts = day_start + 60 * (i + 1)
        out.append(reading("lab-1", ts, i, channel="a", min={"pm25_atm": 7.5}, max={"pm25_atm": 12.25}))
        out.append(reading("lab-1", ts, i, sensor="pms5003", channel="b"))
        out.append(reading("park-2", ts, i, sensor="sds011"))
    out.append(reading("park-2", day_start + 3000, 99, sensor="sds011", pm25_atm=-3.0))  # out of range: flagged
    return out


META = {"lab-1": {"name": "Lab 1", "lat": 52.090712, "lon": 5.121398, "sensors": {"a": "pms5003", "b": "pms5003"},
                  "software": "civicair 0.1.0"},
        "park-2": {"name": "Park 2", "lat": 52.1, "lon": 5.2, "exact_location": True, "sensors": "sds011"}}


def publish_readings(pub, readings: list[dict]) -> None:
    for r in readings:
        pub.publish(contract.readings_topic(r["station"]), orjson.dumps(r))
    pub.settle()


def publish_meta(pub) -> None:
    for station, meta in META.items():
        pub.publish(contract.meta_topic(station), orjson.dumps(meta), retain=True)
    pub.settle()


def settings_for(influxdb: InfluxDB, archive_dir: Path, **overrides) -> ApiSettings:
    return ApiSettings(influx_url=influxdb.url, influx_db=DATABASE, archive_dir=archive_dir, **overrides)


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"
