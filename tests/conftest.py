"""Shared fixtures: real Mosquitto and InfluxDB servers on free ports in temp dirs.

Nothing here is mocked. A missing server binary fails with the Debian package
to install (see civicair.services).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from civicair.influx import Influx, InfluxSettings
from civicair.services import InfluxDB, Mosquitto

DATABASE = "airquality"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    with Influx(InfluxSettings(url=server.url, database=DATABASE)) as db:
        db.create_database()
    yield server
    server.stop()


@pytest.fixture
def influx(influxdb: InfluxDB) -> Iterator[Influx]:
    with Influx(InfluxSettings(url=influxdb.url, database=DATABASE)) as client:
        yield client


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1,
               message: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; fail with ``message``.

    A deadline for liveness, not a timing assertion: it only bounds a hang.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loopback servers only: a proxy set in the environment must not intercept them.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("CIVICAIR_TEST", "1")
