"""Operations surface of the ingest: Prometheus text metrics and a health endpoint.

Owns the metric primitives (:class:`Counter`, :class:`Gauge`, :class:`Histogram`),
their rendering in the Prometheus text exposition format 0.0.4, a small HTTP
server (stdlib ``http.server`` in a daemon thread) that serves ``/metrics`` and
``/health``, and the names, help texts and buckets of the ingest's metrics
(:class:`IngestMetrics`, listed in docs/ingest.md). It must not talk to MQTT or
InfluxDB: the consumer owns the values and hands the server a ``health()`` callable.

The standard library is enough for a handful of metrics, and keeps the ``server``
extra free of a client library whose global registry would get in the way of
several consumers in one test process.

Each counter is incremented from one thread only (the consumer says which); reads
from the HTTP thread may see a value one increment old, which scraping tolerates.
Histograms are observed once per batch and take a lock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

import orjson

from civicair.schema.qc import Flag

log = logging.getLogger("civicair.ingest")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelKey = tuple[str, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def samples(self) -> Iterable[str]:
        raise NotImplementedError

    def render(self) -> str:
        head = f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(_Metric):
    """A monotonically increasing count, optionally split by labels.

    ``value_fn`` makes a counter that reads its value from its owner at scrape time
    (the hot path then only bumps a plain attribute).
    """

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 value_fn: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelKey, float] = {} if labelnames else {(): 0}
        self._value_fn = value_fn

    def inc(self, amount: float = 1, *labelvalues: str) -> None:
        key = tuple(labelvalues)
        self._values[key] = self._values.get(key, 0) + amount

    def value(self, *labelvalues: str) -> float:
        if self._value_fn is not None:
            return self._value_fn()
        return self._values.get(tuple(labelvalues), 0)

    def preset(self, *labelvalues: str) -> None:
        """Show a label set at 0 before it first happens (rates need the zero)."""
        self._values.setdefault(tuple(labelvalues), 0)

    def samples(self) -> Iterable[str]:
        if self._value_fn is not None:
            yield f"{self.name} {_format_value(self._value_fn())}"
            return
        for key, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.labelnames, key)} {_format_value(value)}"


class Gauge(_Metric):
    """A value that goes up and down; ``value_fn`` computes it at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, value_fn: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text)
        self._value: float = 0
        self._value_fn = value_fn

    def set(self, value: float) -> None:
        self._value = value

    def value(self) -> float:
        return self._value_fn() if self._value_fn is not None else self._value

    def samples(self) -> Iterable[str]:
        yield f"{self.name} {_format_value(self.value())}"


class Histogram(_Metric):
    """Cumulative buckets, sum and count, as Prometheus expects them."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[i] += 1
                    break
            else:
                self._counts[-1] += 1
            self._sum += value

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._counts)

    def samples(self) -> Iterable[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative = 0
        for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
            cumulative += count
            le = "+Inf" if math.isinf(bound) else _format_value(float(bound))
            yield f'{self.name}_bucket{{le="{le}"}} {cumulative}'
        yield f"{self.name}_sum {_format_value(total)}"
        yield f"{self.name}_count {cumulative}"


M = TypeVar("M", bound=_Metric)


class Registry:
    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def add(self, metric: M) -> M:
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics.append(metric)
        return metric

    def render(self) -> bytes:
        return "".join(m.render() for m in self._metrics).encode()

    def __getitem__(self, name: str) -> _Metric:
        for m in self._metrics:
            if m.name == name:
                return m
        raise KeyError(name)


def parse(text: str) -> dict[str, float]:
    """Samples of a text exposition as ``{'name{labels}': value}`` (tests, bench, ops)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


# -- HTTP ----------------------------------------------------------------------------

Health = Callable[[], tuple[bool, dict]]


class MetricsServer:
    """``/metrics`` (Prometheus text) and ``/health`` (200 or 503 with a JSON reason)."""

    def __init__(self, registry: Registry, health: Health, host: str = "0.0.0.0", port: int = 9108) -> None:
        self.registry = registry
        self.health = health
        handler = _handler(self)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http",
                                        kwargs={"poll_interval": 0.5}, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "civicair-ingest"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, server.registry.render(), CONTENT_TYPE)
            elif path == "/health":
                ok, body = server.health()
                self._send(200 if ok else 503, orjson.dumps(body), "application/json")
            else:
                self._send(404, b"not found: try /metrics or /health\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # one log line per state change, not per scrape

    return Handler


# -- the ingest's metrics --------------------------------------------------------------

#: Dead-letter reason classes (a label with a small, fixed set of values).
REASON_CLASSES = ("json", "topic", "station_mismatch", "contract", "meta", "influxdb", "internal")


def reason_class(reason: str) -> str:
    """The class of a dead-letter reason, for the ``reason`` label of the counter."""
    if reason.startswith("not valid JSON") or reason.startswith("meta is not valid JSON"):
        return "json"
    if reason.startswith("rejected by InfluxDB"):
        return "influxdb"
    if reason.startswith("internal error"):
        return "internal"
    if "differs from topic station" in reason:
        return "station_mismatch"
    if reason.startswith("topic "):
        return "topic"
    if reason.startswith(("meta", "status")):
        return "meta"
    return "contract"


def _flag_bits() -> dict[str, int]:
    # The qc bits are the schema's (civicair.schema.qc).
    return {f.name.lower(): int(f.value) for f in Flag if f.name}


class IngestMetrics:
    """Every metric of one consumer, in one registry (a test may run several consumers).

    Plain attributes are bumped on the hot path by the thread named beside them and
    read at scrape time; the registry renders them.
    """

    def __init__(self, receive_maximum: int) -> None:
        self.received_messages = 0  # paho network thread
        self.redelivered_messages = 0  # paho network thread
        self.held_max = 0  # paho network thread
        self.receive_maximum_waits = 0  # paho network thread
        self.settled_messages = 0  # writer thread: acknowledged, or left to the broker's redelivery
        self.newest_ts = 0  # writer thread
        self.confirmations_sent = 0  # writer thread
        self.confirmation_failures = 0  # writer thread
        self.sessions_lost = 0  # paho network thread
        self.flag_bits = _flag_bits()
        r = self.registry = Registry()
        p = "civicair_ingest_"
        r.add(Counter(p + "received_messages_total", "MQTT messages received (redeliveries included).",
                      value_fn=lambda: self.received_messages))
        r.add(Counter(p + "redelivered_messages_total",
                      "Messages received with the DUP flag: redelivered after a reconnect.",
                      value_fn=lambda: self.redelivered_messages))
        self.received_readings = r.add(Counter(
            p + "received_readings_total", "Readings decoded from messages that kept the wire contract."))
        self.written_readings = r.add(Counter(
            p + "written_readings_total", "Readings written to InfluxDB (redelivered ones count again)."))
        self.written_station_points = r.add(Counter(
            p + "written_station_points_total", "Station meta and status points written to InfluxDB."))
        self.acked_messages = r.add(Counter(
            p + "acked_messages_total", "Messages acknowledged to the broker after their write."))
        self.deadlettered = r.add(Counter(
            p + "deadlettered_total", "Dead letters (messages or rejected lines), by reason class.",
            labelnames=("reason",)))
        for cls in REASON_CLASSES:
            self.deadlettered.preset(cls)
        self.deadletter_file_errors = r.add(Counter(
            p + "deadletter_file_errors_total",
            "Dead letters that could not be appended to the dead-letter file (topic only)."))
        self.flagged = r.add(Counter(
            p + "flagged_readings_total", "Written readings with a quality flag set, per qc bit.",
            labelnames=("flag",)))
        for name in self.flag_bits:
            self.flagged.preset(name)
        self.write_retries = r.add(Counter(
            p + "write_retries_total", "InfluxDB writes retried (server down, timing out or 5xx)."))
        self.prepare_failures = r.add(Counter(
            p + "prepare_failures_total", "Batches that a decoding/cleaning bug made us split per message."))
        self.batch_readings = r.add(Histogram(
            p + "batch_readings", "Readings per written batch.",
            (1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000)))
        self.write_seconds = r.add(Histogram(
            p + "write_seconds", "Duration of a successful InfluxDB write request [s].",
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)))
        self.prepare_seconds = r.add(Histogram(
            p + "prepare_seconds", "Decode + clean + encode time of a batch [s].",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)))
        r.add(Gauge(p + "consumer_lag_seconds",
                    "Now minus the newest reading timestamp written (NaN before the first write; "
                    "readings over 5 min ahead of the clock do not count).",
                    value_fn=lambda: time.time() - self.newest_ts if self.newest_ts else math.nan))
        r.add(Gauge(p + "newest_written_timestamp_seconds", "Newest reading timestamp written [epoch s].",
                    value_fn=lambda: self.newest_ts))
        self.last_write_time = r.add(Gauge(
            p + "last_write_timestamp_seconds", "Wall-clock time of the last successful write [epoch s]."))
        self.influxdb_up = r.add(Gauge(p + "influxdb_up", "1 while InfluxDB accepts writes, else 0."))
        self.influxdb_up.set(1)
        self.mqtt_connected = r.add(Gauge(p + "mqtt_connected", "1 while connected to the broker, else 0."))
        r.add(Gauge(p + "buffered_messages",
                    "Messages received and not yet acknowledged (in the buffer or the batch being written).",
                    value_fn=self.held))
        r.add(Gauge(p + "buffered_messages_max", "Highest buffered_messages seen since start.",
                    value_fn=lambda: self.held_max))
        r.add(Counter(p + "confirmations_sent_total",
                      "Stored confirmations published to stations (one per station per written batch).",
                      value_fn=lambda: self.confirmations_sent))
        r.add(Counter(p + "confirmation_failures_total",
                      "Written batches whose stored confirmations could not be built (a bug; logged).",
                      value_fn=lambda: self.confirmation_failures))
        r.add(Counter(p + "sessions_lost_total",
                      "Reconnects where the broker answered with a new session instead of resuming ours.",
                      value_fn=lambda: self.sessions_lost))
        r.add(Counter(p + "receive_maximum_waits_total",
                      "Times the broker sent beyond our Receive Maximum and the network thread "
                      "stopped reading until the writer caught up.",
                      value_fn=lambda: self.receive_maximum_waits))
        r.add(Gauge(p + "receive_maximum", "MQTT Receive Maximum asked of the broker: the bound on "
                    "buffered_messages while nothing is acknowledged.", value_fn=lambda: receive_maximum))

    def held(self) -> int:
        return self.received_messages - self.settled_messages

    def deadlettered_count(self) -> int:
        return int(sum(self.deadlettered.value(c) for c in REASON_CLASSES))
