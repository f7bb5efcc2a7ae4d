"""The InfluxDB writer: one prepared batch's lines written, whatever it takes.

Owns the write policy: retry with backoff (0.5 s doubling to 30 s) while InfluxDB is
down; on "database not found" (a server set up afresh) create the database and retry;
on any other refusal split the lines in halves until the refused ones are found, which
go to the dead letter while the rest is written. It also owns InfluxDB's health as the
ingest sees it (``influxdb_up``, the down/back/recovered log lines, the state
``/health`` reports).

Must not know about MQTT or acknowledgements: the consumer (:mod:`ingest.consumer`)
acknowledges after :meth:`InfluxWriter.write` returns, and tells it when to give a
batch up (``abandon``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from civicair.influx import Influx, InfluxRejected, InfluxUnavailable
from ingest.columns import DeadLetter
from ingest.lineprotocol import MEASUREMENT
from ingest.metrics import IngestMetrics

log = logging.getLogger("civicair.ingest")

_READINGS_LINE = MEASUREMENT.encode() + b","
#: First and longest wait between two tries of the same write [s].
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0


class InfluxWriter:
    """Writes line protocol to InfluxDB until it is taken, refused line by line, or given up.

    Parameters
    ----------
    influx : Influx
        The database client.
    metrics : IngestMetrics
        ``influxdb_up``, ``write_retries``, ``write_seconds`` are kept here.
    stop : threading.Event
        Set when the ingest stops: a write that has not succeeded by then is given up.
    deadletter : callable
        Receives the lines InfluxDB refused, as dead letters (topic ``influxdb``).

    Used from the writer thread; the ``down_since``/``error``/``draining_since``
    attributes are read by ``/health`` and the batch taker (a value one write old is fine).
    """

    def __init__(self, influx: Influx, metrics: IngestMetrics, stop: threading.Event,
                 deadletter: Callable[[list[DeadLetter]], None]) -> None:
        self.influx = influx
        self._metrics = metrics
        self._stop = stop
        self._deadletter = deadletter
        #: When writes started failing (monotonic), None while they succeed.
        self.down_since: float | None = None
        #: The last failure, for /health.
        self.error = ""
        #: When InfluxDB came back after an outage (monotonic), until the backlog is drained.
        self.draining_since: float | None = None
        self._draining_from = 0.0
        #: Readings lines of the last :meth:`write` that InfluxDB refused [count] …
        self.rejected_readings = 0
        #: … and the lines themselves (for the stored confirmations, :mod:`ingest.confirm`).
        self.rejected_lines: list[bytes] = []

    def ensure_database(self, name: str) -> None:
        """CREATE DATABASE, best effort: not fatal if InfluxDB is down (the writer retries
        later) or refuses it (2.x/3: the bucket is made beforehand)."""
        try:
            self.influx.create_database()
        except (InfluxUnavailable, InfluxRejected) as exc:
            log.warning("could not make sure database %r exists (%s); writing anyway", name, str(exc)[:200])

    def write(self, lines: bytes, abandon: Callable[[], bool] = lambda: False) -> bool | None:
        """Write until InfluxDB takes it: True; False when stopping; None when ``abandon()``
        says the batch need not be written any more (its messages come again). Lines
        InfluxDB refuses go to the dead letter (counted in :attr:`rejected_readings`)."""
        self.rejected_readings = 0
        self.rejected_lines = []
        return self._write_with_retry(lines, abandon)

    def _write_with_retry(self, lines: bytes, abandon: Callable[[], bool] = lambda: False) -> bool | None:
        delay = RETRY_FIRST_S
        while True:
            started = time.perf_counter()
            try:
                self.influx.write(lines)
            except InfluxUnavailable as exc:
                self._failed(exc)
            except InfluxRejected as exc:
                if exc.status != 404:
                    # A bad line is a data problem: find it, keep the rest.
                    self._ok()
                    return self._bisect(lines, exc)
                # "database not found": the server was set up afresh; make it and retry.
                self._failed(exc)
                try:
                    self.influx.create_database()
                except (InfluxUnavailable, InfluxRejected):
                    pass
            else:
                self._metrics.write_seconds.observe(time.perf_counter() - started)
                self._ok()
                return True
            self._metrics.write_retries.inc()
            if self._stop.wait(delay):
                return False
            if abandon():
                return None
            delay = min(delay * 2, RETRY_MAX_S)

    def _bisect(self, lines: bytes, exc: InfluxRejected) -> bool:
        rows = lines.splitlines()
        if len(rows) == 1:
            if rows[0].startswith(_READINGS_LINE):
                self.rejected_readings += 1
                self.rejected_lines.append(rows[0])
            self._deadletter([DeadLetter("influxdb", rows[0], f"rejected by InfluxDB: {exc.message}")])
            return True
        half = len(rows) // 2
        for part in (rows[:half], rows[half:]):
            if not self._write_with_retry(b"\n".join(part) + b"\n"):
                return False
        return True

    def _failed(self, exc: Exception) -> None:
        self.error = str(exc)[:300]
        self._metrics.influxdb_up.set(0)
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.draining_since = None
            log.error("InfluxDB down (%s); holding %d messages unacknowledged, the broker queues the rest",
                      self.error, self._metrics.held())

    def _ok(self) -> None:
        self._metrics.influxdb_up.set(1)
        if self.down_since is not None:
            down = time.monotonic() - self.down_since
            self.down_since = None
            self.draining_since = time.monotonic()
            self._draining_from = self._metrics.written_readings.value()
            log.info("InfluxDB back after %.0f s; backlog draining", down)

    def recovered(self) -> None:
        """A batch that was not full was taken after an outage: the backlog is drained."""
        since, self.draining_since = self.draining_since, None
        if since is not None:
            log.info("recovered: backlog drained in %.0f s (%d readings written meanwhile)",
                     time.monotonic() - since, self._metrics.written_readings.value() - self._draining_from)
