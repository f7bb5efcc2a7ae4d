"""SensorThings tests: the API on a real InfluxDB, seeded with line protocol written here so
every expected entity and value can be worked out by hand.

- lab-1: a pms5003t on channel a (6 Datastreams), 180 one-minute readings from T0, every
  10th flagged SPIKE (qc=4); it moved once (two published positions).
- lab-2: sds011 on channels a and b (3 Datastreams each), 30 readings each.
- lab-3: readings only, no meta (no position).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from civicair.schema.storage import meta_to_line
from tests.api.conftest import T0, make_client, pm_line, write
from tests.ingest.conftest import ingest_env, publisher, spawn_ingest  # noqa: F401 (fixtures)

BASE = "http://testserver/sta/v1.1"
N1 = 180


def seed(influx) -> None:
    lines = [pm_line("lab-1", T0 + 60 * i, sensor="pms5003t", qc=4 if i % 10 == 0 else 0, pm25=float(i),
                     pm25_atm=float(i) + 0.5, pm1_atm=1.0, pm10_atm=20.0, rh=40.0 + i % 20, temp=21.5,
                     pm25_method="epa_barkjohn_2021")
             for i in range(N1)]
    for ch in ("a", "b"):
        lines += [pm_line("lab-2", T0 + 60 * i, sensor="sds011", channel=ch, pm25=100.0 + i, pm25_atm=90.0,
                          pm10_atm=150.0) for i in range(30)]
    lines += [pm_line("lab-3", T0 + 120 * i, pm25=7.0, pm25_atm=7.0, pm1_atm=3.0, pm10_atm=9.0)
              for i in range(10)]
    write(influx, lines)
    influx.write(meta_to_line("lab-1", {"name": "Lab 1", "lat": 52.0907, "lon": 5.1214,
                                        "sensors": {"a": "pms5003t"}}, T0 - 3600))
    influx.write(meta_to_line("lab-1", {"name": "Lab 1", "lat": 52.1, "lon": 5.2,
                                        "sensors": {"a": "pms5003t"}}, T0 - 1800))
    influx.write(meta_to_line("lab-2", {"name": "Taipei 2", "lat": 25.033, "lon": 121.565,
                                        "sensors": {"a": "sds011", "b": "sds011"}}, T0 - 3600))


@pytest.fixture
def sta(influxdb, influx) -> Iterator[TestClient]:
    seed(influx)
    with make_client(influxdb) as c:
        yield c
