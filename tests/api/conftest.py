"""API test helpers: an app on a real InfluxDB (the ``influx`` fixture), seeded with line
protocol written here, so every expected number can be computed by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from civicair.influx import Influx
from civicair.services import InfluxDB
from tests.conftest import DATABASE

#: 2026-01-01T00:00:00Z
T0 = 1767225600
HOUR = 3600
DAY = 86400


def pm_line(station: str, ts: int, *, sensor: str = "pms5003", channel: str = "a", qc: int | None = 0,
            window: int = 60, n: int = 20, **fields: Any) -> str:
    """One ``pm`` point as the ingest writes it (floats for values, i-suffixed integers)."""
    parts = [f"{k}={float(v)!r}" if not isinstance(v, str) else f'{k}="{v}"' for k, v in fields.items()]
    if qc is not None:
        parts.append(f"qc={qc}i")
    parts += [f"n={n}i", f"seq={ts % 100000}i", "boot=1i", f"window={window}i", "synced=true"]
    return f"pm,station={station},sensor={sensor},channel={channel} {','.join(parts)} {ts}"


def write(influx: Influx, lines: list[str] | str) -> None:
    text = lines if isinstance(lines, str) else "\n".join(lines)
    influx.write((text + "\n").encode())


def make_client(influxdb: InfluxDB, **overrides: Any) -> TestClient:
    return TestClient(create_app(ApiSettings(influx_url=influxdb.url, influx_db=DATABASE, **overrides)))


@pytest.fixture
def client(influxdb: InfluxDB, influx: Influx) -> Iterator[TestClient]:
    with make_client(influxdb) as c:
        yield c
