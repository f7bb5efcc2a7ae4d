"""Seeded InfluxDB for the dashboard checks: several stations, two days of readings.

Written as line protocol in the schema of DESIGN.md (measurement ``pm`` and
``station``), independent of the ingest's code, so the dashboards are checked
against the schema they promise to read.

* ``lab-1``: two sensors (channels a and b), reporting until now;
* ``park-2`` and ``school-3``: one sensor each, reporting until now;
* ``depot-4``: stopped reporting two hours ago (offline), position known.

Every quality flag is set on some readings: bit ``1 << k`` on every ``(k + 3)``-th
reading of a series, so each flag's rate is known.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from civicair.influx import Influx
from civicair.schema.qc import Flag

MINUTE = 60
DAYS = 2


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
    SeedStation("depot-4", "Bus depot", 52.0780, 5.1050, ("a",), 45.0, stopped_s_ago=2 * 3600),
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


@pytest.fixture
def seeded(influx: Influx) -> Iterator[Influx]:
    lines = seed_lines(int(time.time()))
    for start in range(0, len(lines), 5000):
        influx.write(("\n".join(lines[start:start + 5000]) + "\n").encode())
    yield influx
