"""Seeded InfluxDB for the dashboard checks: several stations, two days of readings,
90 days of hourly and daily rollups, and the NowCast of the last 12 hours.

Written as line protocol in the schema of DESIGN.md and civicair/schema/storage.py
(measurements ``pm``, ``station``, ``pm_1h``/``pm_1d`` and ``pm_nowcast``), independent
of the ingest's and the rollup worker's code, so the dashboards are checked against the
schema they promise to read.

* ``lab-1``: two sensors (channels a and b), reporting until now;
* ``park-2`` and ``school-3``: one sensor each, reporting until now;
* ``depot-4``: stopped reporting an hour ago (offline), position known; its NowCast is
  still current (2 of its last 3 hours have data).

Every quality flag is set on some readings: bit ``1 << k`` on every ``(k + 3)``-th
reading of a series, so each flag's rate is known. The rollups follow the same daily
wave as the readings, and carry the same flag rates; the NowCast is computed by
:func:`civicair.schema.nowcast.nowcast` from the hourly means of the rollup and written by
the rollup worker's writer, :func:`civicair.schema.storage.nowcast_line`.
``seeded_rp`` keeps the rollups and NowCasts in a retention policy of their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from civicair.influx import Influx
from civicair.schema import nowcast, storage
from civicair.schema.qc import Flag
from tests.conftest import DATABASE

MINUTE = 60
HOUR = 3600
DAY = 86400
DAYS = 2
ROLLUP_DAYS = 90


@dataclass(frozen=True)
class SeedStation:
    id: str
    name: str
    lat: float
    lon: float
    channels: tuple[str, ...]
    base_pm25: float
    stopped_s_ago: int = 0


STATIONS = (
    SeedStation("lab-1", "Lab, Science Park", 52.0907, 5.1214, ("a", "b"), 8.0),
    SeedStation("park-2", "Wilhelminapark", 52.0850, 5.1370, ("a",), 14.0),
    SeedStation("school-3", "Primary school, Oost", 52.0960, 5.1420, ("a",), 30.0),
    SeedStation("depot-4", "Bus depot", 52.0780, 5.1050, ("a",), 45.0, stopped_s_ago=3600),
)
ONLINE = [s.id for s in STATIONS if not s.stopped_s_ago]
OFFLINE = [s.id for s in STATIONS if s.stopped_s_ago]


def qc_bits(i: int) -> int:
    return sum(int(f) for k, f in enumerate(Flag) if i % (k + 3) == 0)


def seed_lines(now_s: int) -> list[str]:
    end = now_s // MINUTE * MINUTE
    lines = []
    for s in STATIONS:
        last = end - s.stopped_s_ago
        for ch in s.channels:
            for i in range(DAYS * 24 * 60):
                ts = last - i * MINUTE
                wave = 1 + 0.5 * math.sin(2 * math.pi * ts / 86400)
                atm = round(s.base_pm25 * wave * (1.02 if ch == "b" else 1.0), 2)
                pm25 = round(atm * 0.8, 2)
                fields = (
                    f"pm1_cf1={atm * 0.6:.2f},pm25_cf1={atm * 1.1:.2f},pm10_cf1={atm * 1.5:.2f},"
                    f"pm1_atm={atm * 0.6:.2f},pm25_atm={atm},pm10_atm={atm * 1.4:.2f},"
                    f"rh={55 + 20 * math.cos(2 * math.pi * ts / 86400):.1f},temp={12 + 6 * wave:.1f},"
                    f'pm25={pm25},pm25_method="epa_barkjohn_2021",qc={qc_bits(i)}i,'
                    f"n=26i,seq={100000 - i}i,boot=1i,window=60i,synced=true"
                )
                lines.append(f"pm,station={s.id},sensor=pms5003,channel={ch} {fields} {ts}")
        lines.append(f'station,station={s.id} name="{s.name}",lat={s.lat},lon={s.lon},'
                     f'sensors_a="pms5003",exact_location=false,laser_hours_a=12000.0,life_used_a=45.7,'
                     f'spool_unconfirmed=2i,spool_oldest_unconfirmed_s=180i '
                     f'{end - 3 * 86400}')
        lines.append(f'station,station={s.id} status="{"offline" if s.stopped_s_ago else "online"}" {last}')
    return lines


def hourly_pm25(s: SeedStation, hour_start: int) -> float:
    """The seeded hourly mean PM2.5 of a station (the readings' wave at the hour's middle)."""
    wave = 1 + 0.5 * math.sin(2 * math.pi * (hour_start + HOUR // 2) / DAY)
    return round(s.base_pm25 * wave * 0.8, 3)


def _rollup_fields(s: SeedStation, start: int, hours: int) -> str:
    """Fields of a rollup point over ``hours`` hours from ``start`` (a mean of hourly means)."""
    means = [hourly_pm25(s, start + h * HOUR) for h in range(hours)]
    pm25 = sum(means) / hours
    readings = 60 * hours  # per channel
    count = readings * len(s.channels)
    fields = {storage.rollup_field("pm25", "mean", False): pm25, storage.rollup_field("pm25", "mean"): pm25,
              storage.rollup_field("pm25_atm", "mean", False): pm25 / 0.8,
              storage.rollup_field("pm10_atm", "mean", False): pm25 / 0.8 * 1.4,
              storage.rollup_field("rh", "mean", False): 55.0, storage.rollup_field("temp", "mean", False): 12.0}
    text = ",".join(f"{k}={v!r}" for k, v in fields.items())
    text += f",{storage.rollup_field('pm25', 'count', False)}={count}i"
    text += "".join(f",readings_{ch}={readings}i,window_{ch}={readings * 60}i" for ch in s.channels)
    # The readings' flag rates: bit k on one reading in k + 3.
    text += "".join(f",{storage.flag_field(f.name or '')}={count // (k + 3)}i" for k, f in enumerate(Flag))
    return text + f",{storage.QC_OR}={sum(int(f) for f in Flag)}i"


def rollup_lines(now_s: int) -> list[str]:
    """Hourly and daily rollup points of every station, up to its last complete hour/day."""
    lines = []
    for s in STATIONS:
        last_hour = (now_s - s.stopped_s_ago) // HOUR * HOUR - HOUR
        for h in range(ROLLUP_DAYS * 24):
            start = last_hour - h * HOUR
            lines.append(f"{storage.PM_1H},station={s.id} {_rollup_fields(s, start, 1)} {start}")
        last_day = now_s // DAY * DAY - DAY
        for d in range(ROLLUP_DAYS):
            start = last_day - d * DAY
            lines.append(f"{storage.PM_1D},station={s.id} {_rollup_fields(s, start, 24)} {start}")
    return lines


def expected_nowcast(s: SeedStation, now_s: int) -> nowcast.NowCast | None:
    """The station's NowCast at ``now_s``: over the 12 hours before its last complete hour's
    end, the hours after the station stopped (no rollup point) missing; None where EPA's
    rule (2 of the last 3 hours) gives none."""
    last_hour = now_s // HOUR * HOUR - HOUR
    last_data = (now_s - s.stopped_s_ago) // HOUR * HOUR - HOUR if s.stopped_s_ago else last_hour
    hours = [last_hour - i * HOUR for i in range(nowcast.HOURS)]
    return nowcast.nowcast([hourly_pm25(s, h) if h <= last_data else None for h in hours])


def nowcast_lines(now_s: int) -> list[str]:
    """``pm_nowcast`` points of the last 12 hours, written by the rollup worker's own writer
    (:func:`storage.nowcast_line`: time = the end of the last complete hour, AQI 501 beyond
    the index), where EPA's rule gives one (as the worker writes them)."""
    lines = []
    for s in STATIONS:
        for back in range(12):
            cast = expected_nowcast(s, now_s - back * HOUR)
            if cast is not None:
                end = (now_s - back * HOUR) // HOUR * HOUR
                lines.append(storage.nowcast_line(s.id, end, cast).decode().rstrip("\n"))
    return lines


#: The retention policy the ``seeded_rp`` fixture keeps the rollups in (as ``civicair rollup
#: init`` creates one when raw readings expire).
ROLLUP_RP = "forever"


def seed(influx: Influx, now_s: int, rp: str | None = None) -> None:
    """Readings and stations in the default policy; rollups and NowCasts in ``rp``."""
    for lines, policy in ((seed_lines(now_s), None), (rollup_lines(now_s) + nowcast_lines(now_s), rp)):
        for start in range(0, len(lines), 5000):
            influx.write(("\n".join(lines[start:start + 5000]) + "\n").encode(), rp=policy)


@pytest.fixture
def seeded(influx: Influx) -> Iterator[Influx]:
    seed(influx, int(time.time()))
    yield influx


@pytest.fixture
def seeded_rp(influx: Influx) -> Iterator[Influx]:
    """The same data, with the rollups and NowCasts in the retention policy :data:`ROLLUP_RP`."""
    influx.query(f'CREATE RETENTION POLICY "{ROLLUP_RP}" ON "{DATABASE}" DURATION INF REPLICATION 1',
                 method="POST")
    seed(influx, int(time.time()), ROLLUP_RP)
    yield influx
