"""The ingest as production runs it: ``python -m ingest`` processes, a QoS 1 publisher
in the test process, the real broker and database (fixtures in tests/conftest.py).

Readings are known: each has a unique (station, ts) and a ``seq`` numbered from 0,
so completeness and duplicates can be checked against what InfluxDB holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from civicair.influx import Influx, series
from civicair.schema import contract
from civicair.services import free_port, new_session_dying_with_parent
from ingest.metrics import parse
from tests import procs
from tests.conftest import DATABASE, wait_until

#: 2025-01-01T00:00:00Z: readings are one minute apart from here (in the past, so no
#: future-timestamp flag; the tests check storage, not flags).
T0 = 1_735_689_600


def reading(station: str, seq: int, t0: int = T0) -> dict:
    """A valid PMS5003 reading; ``seq`` also fixes its window (unique per station)."""
    return {"v": 1, "station": station, "sensor": "pms5003", "channel": "a", "ts": t0 + 60 * seq,
            "window": 60, "n": 26, "seq": seq, "boot": 1, "synced": True,
            "pm1_cf1": 3.0, "pm25_cf1": 10.0 + seq % 7, "pm10_cf1": 21.0, "pm1_atm": 2.0,
            "pm25_atm": 9.0 + seq % 5, "pm10_atm": 19.0, "n0_3": 1500.0, "n0_5": 420.0,
            "n1_0": 70.0, "n2_5": 9.0, "n5_0": 3.0, "n10_0": 1.0, "rh": 40.0 + seq % 30, "temp": 21.5}


def messages_for(stations: list[str], per_station: int) -> list[tuple[str, bytes]]:
    """Single-reading messages, interleaved across stations as live stations send them."""
    return [(contract.readings_topic(s), orjson.dumps(reading(s, i)))
            for i in range(per_station) for s in stations]


def stored(influx: Influx, stations: list[str] | None = None) -> dict[str, list[tuple[int, int]]]:
    """``{station: [(ts, seq), …]}`` as InfluxDB holds them (one entry per point)."""
    (result,) = influx.query('SELECT "seq" FROM "pm" GROUP BY "station"')
    out = {s["tags"]["station"]: [(int(t), int(q)) for t, q in s["values"]] for s in series(result)}
    return {k: v for k, v in out.items() if stations is None or k in stations}


def stored_count(influx: Influx) -> int:
    (result,) = influx.query('SELECT count("seq") FROM "pm"')
    rows = series(result)
    return int(rows[0]["values"][0][1]) if rows else 0


def assert_complete_once(influx: Influx, stations: list[str], per_station: int) -> None:
    """Every reading sent is stored, once: per station the (ts, seq) set is exactly the one sent."""
    held = stored(influx, stations)
    assert sorted(held) == sorted(stations)
    for s in stations:
        points = held[s]
        assert len(points) == per_station, (s, len(points))
        assert {seq for _, seq in points} == set(range(per_station)), s
        assert sorted(points) == [(T0 + 60 * i, i) for i in range(per_station)], s


# -- the ingest process ---------------------------------------------------------------------


class IngestProcess:
    """``python -m ingest`` with CIVICAIR_* settings; restartable with the same identity."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.metrics_port = int(env["CIVICAIR_METRICS_PORT"])
        self.proc: subprocess.Popen | None = None

    def start(self, connected: bool = True) -> IngestProcess:
        """Start; wait until it serves /metrics and (``connected``) is connected to the broker."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ingest"], env={**os.environ, **self.env},
                                         stdout=log, stderr=subprocess.STDOUT, preexec_fn=new_session_dying_with_parent)
        want = 1 if connected else 0
        wait_until(lambda: self.alive() and self.metrics().get("civicair_ingest_mqtt_connected") == want,
                   timeout=30, message=f"ingest up; log:\n{self.log_tail()}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        proc, self.proc = self.proc, None
        return None if proc is None else procs.stop(proc, sig, timeout=30)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> dict[str, float]:
        try:
            return parse(self._get("/metrics")[1].decode())
        except (urllib.error.URLError, OSError):
            return {}

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)

    def health(self) -> tuple[int, dict]:
        status, body = self._get("/health")
        return status, orjson.loads(body)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]


@pytest.fixture
def ingest_env(mosquitto, influxdb, tmp_path: Path):
    """Settings of one ingest process; ``make(**overrides)`` adds or changes CIVICAIR_* values."""

    def make(**overrides: object) -> dict[str, str]:
        env = {
            "CIVICAIR_MQTT_HOST": mosquitto.host, "CIVICAIR_MQTT_PORT": str(mosquitto.port),
            "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE,
            "CIVICAIR_DEADLETTER_PATH": str(tmp_path / "dead.jsonl"),
            "CIVICAIR_METRICS_HOST": "127.0.0.1", "CIVICAIR_METRICS_PORT": str(free_port()),
            "CIVICAIR_BATCH_AGE_S": "0.2", "CIVICAIR_MQTT_CLIENT_ID": "ingest-test",
        }
        env.update({f"CIVICAIR_{k.upper()}": str(v) for k, v in overrides.items()})
        return env

    return make


@pytest.fixture
def spawn_ingest(ingest_env, tmp_path: Path) -> Iterator:
    """Start ingest processes; every one still running is stopped (and its log shown) at the end."""
    started: list[IngestProcess] = []

    def spawn(name: str = "ingest", connected: bool = True, **overrides: object) -> IngestProcess:
        p = IngestProcess(ingest_env(**overrides), tmp_path / f"{name}.log")
        started.append(p)
        return p.start(connected)

    yield spawn
    for p in started:
        p.stop()
        print(f"--- {p.log_path.name} ---\n{p.log_tail()}")


# -- the publisher -----------------------------------------------------------------------


class Publisher:
    """A QoS 1 publisher (paho, MQTT 5) that knows which messages the broker acknowledged.

    Messages the broker did not acknowledge (it was restarted meanwhile) are published
    again by :meth:`settle`; duplicates are harmless (writes are idempotent) and the
    tests check what is stored, not how often it was sent.
    """

    def __init__(self, host: str, port: int, client_id: str = "test-publisher") -> None:
        self._sent: list[tuple[str, bytes, bool]] = []
        self._infos: list[mqtt.MQTTMessageInfo | None] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(500)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(0.2, 2)
        c.connect(host, port)
        c.loop_start()
        self.client = c
        wait_until(c.is_connected, timeout=10, message="publisher connected")

    def publish(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        self._sent.append((topic, payload, retain))
        self._infos.append(info if qos else None)

    def publish_all(self, messages: list[tuple[str, bytes]], rate: float | None = None) -> None:
        """Publish in order; ``rate`` (messages/s) paces a live stream."""
        start = time.monotonic()
        for i, (topic, payload) in enumerate(messages):
            self.publish(topic, payload)
            if rate:
                delay = start + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    def stream(self, messages: list[tuple[str, bytes]], rate: float) -> threading.Thread:
        t = threading.Thread(target=self.publish_all, args=(messages, rate), daemon=True)
        t.start()
        return t

    @property
    def sent(self) -> int:
        return len(self._sent)

    def unacknowledged(self) -> list[int]:
        return [i for i, info in enumerate(self._infos) if info is not None and not _published(info)]

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until the broker acknowledged every message, publishing again what it lost."""
        deadline = time.monotonic() + timeout
        while not wait_for(lambda: not self.unacknowledged(), 5):
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.unacknowledged())} messages never acknowledged")
            if self.client.is_connected():
                for i in self.unacknowledged():
                    topic, payload, retain = self._sent[i]
                    self._infos[i] = self.client.publish(topic, payload, qos=1, retain=retain)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _published(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except RuntimeError:  # published while the broker was away: settle() sends it again
        return False


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


@pytest.fixture
def publisher(mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto.host, mosquitto.port)
    yield p
    p.close()


@pytest.fixture
def deadletter_topic(mosquitto) -> Iterator[list[dict]]:
    """What arrives on the dead-letter topic, decoded, in order (a subscriber started first)."""
    seen: list[dict] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda c, u, m: seen.append(orjson.loads(m.payload))
    watcher.on_connect = lambda c, u, f, rc, p: c.subscribe(contract.DEADLETTER_TOPIC, qos=1)
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    wait_until(watcher.is_connected, timeout=10, message="dead-letter watcher connected")
    yield seen
    watcher.disconnect()
    watcher.loop_stop()
