"""The ingest process: wires the MQTT session, the batch step and the writer together.

Three threads. paho's network thread only appends messages to the session's buffer
(:mod:`ingest.session`). A prepare thread takes a batch (by size or age) and prepares
it with the pure batch step (:mod:`ingest.batch`: decode, clean, encode by topic kind);
a writer thread writes it to InfluxDB (:mod:`ingest.writer`, retrying while InfluxDB
is down) and only then acknowledges every message of the batch, in the order received.
While nothing is acknowledged the broker sends at most ``receive_maximum`` messages:
that is the back-pressure that keeps memory bounded through a database outage.

Owns: the threads and their hand-over, the write-then-acknowledge ordering (one batch
at a time, :meth:`Consumer._commit`), start-up (database, quality history restored by
:mod:`ingest.restore`), shutdown, ``/health`` and the metrics server. Must not own the
session's buffering, decoding/cleaning/encoding, the write policy or the dead letter's
format (:mod:`ingest.deadletter`).
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from pathlib import Path

from civicair.influx import Influx, InfluxRejected, InfluxUnavailable
from ingest import confirm, restore
from ingest.batch import Held, Prepared, prepare, prepare_one_by_one
from ingest.clean import Cleaner
from ingest.deadletter import DeadLetterSink
from ingest.metrics import IngestMetrics, MetricsServer
from ingest.session import Session
from ingest.settings import IngestSettings
from ingest.writer import InfluxWriter

log = logging.getLogger("civicair.ingest")


class Consumer:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.influx = Influx(settings.influx())
        #: Flags and corrections; only the preparer thread uses it after start().
        self.cleaner = Cleaner()
        self.metrics = IngestMetrics(receive_maximum=settings.receive_maximum)
        self._stop = threading.Event()
        self.session = Session(settings, self.metrics, self._stop)
        self.deadletter = DeadLetterSink(Path(settings.deadletter_path), self.session.publish, self.metrics)
        self.writer = InfluxWriter(self.influx, self.metrics, self._stop, self.deadletter)
        # Two stages, so that the next batch is decoded and encoded while InfluxDB takes this
        # one. Measured with bench/ingest_throughput.py on two busy cores: single-reading
        # messages 4.1-4.7k -> 5.5-8.0k readings/s, 100-reading messages 13-16k -> 18-25k.
        # One prepared batch waits at most: what is held stays bounded.
        self._preparer = threading.Thread(target=self._prepare_loop, name="ingest-prepare", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="influx-writer", daemon=True)
        self._prepared: queue.Queue[Prepared | None] = queue.Queue(maxsize=1)
        self._writer_done = threading.Event()
        self._server: MetricsServer | None = None

    @property
    def subscription(self) -> str:
        return self.session.subscription

    @property
    def connected(self) -> threading.Event:
        return self.session.connected

    @property
    def metrics_port(self) -> int | None:
        return self._server.port if self._server else None

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        if self.settings.metrics_port:
            try:
                self._server = MetricsServer(self.metrics.registry, self.health, self.settings.metrics_host,
                                             self.settings.metrics_port).start()
            except OSError as exc:
                # Losing the metrics must not stop the readings: say it loudly and go on.
                log.error("metrics server not started on %s:%s (%s); /metrics and /health are off",
                          self.settings.metrics_host, self.settings.metrics_port, exc)
        self.writer.ensure_database(self.settings.influx_db)
        self._restore_history()
        self.session.start()
        self._preparer.start()
        self._writer.start()

    def _restore_history(self) -> None:
        """Before the first message: the quality history from the database, so a restart
        does not leave the next windows of every series unjudged. Best effort."""
        lookback = self.settings.history_lookback_s
        if not lookback:
            return
        try:
            got = restore.restore(self.influx, self.cleaner, lookback)
        except (InfluxUnavailable, InfluxRejected) as exc:
            log.warning("quality history starts empty: could not read it back from InfluxDB (%s)",
                        str(exc)[:200])
            return
        log.info("quality history restored: %d windows of %d series from the last %d s",
                 got.windows, got.series, lookback)

    def stop(self) -> None:
        """Write what is buffered (if InfluxDB takes it), acknowledge it, then disconnect.

        Messages that arrive meanwhile are not taken: unacknowledged, the broker keeps
        them in our session for the next start.
        """
        self.session.close()
        self._preparer.join(30)
        self._writer.join(30)
        self.session.disconnect()
        self.influx.close()
        if self._server:
            self._server.stop()
        m = self.metrics
        log.info("ingest stopped: %d readings written, %d dead letters",
                 m.written_readings.value(), m.deadlettered_count())

    # -- health -----------------------------------------------------------------
    def health(self) -> tuple[bool, dict]:
        reasons = []
        connected = self.session.connected.is_set()
        down_since = self.writer.down_since
        if not connected:
            reasons.append("not connected to the MQTT broker")
        if down_since is not None:
            reasons.append(f"InfluxDB writes failing for {time.monotonic() - down_since:.0f} s: "
                           f"{self.writer.error}")
        ok = not reasons
        return ok, {
            "status": "ok" if ok else "unavailable",
            "reasons": reasons,
            "mqtt_connected": connected,
            "influxdb_ok": down_since is None,
            "buffered_messages": self.metrics.held(),
            "draining": self.writer.draining_since is not None,
        }

    # -- prepare thread ----------------------------------------------------------------
    def _prepare_loop(self) -> None:
        """Take batches and prepare them, in order, one ahead of the writer."""
        try:
            while True:
                batch, full = self.session.take()
                if batch:
                    if not full and self.writer.draining_since is not None:
                        self.writer.recovered()
                    if not self._hand_over(self._prepare(batch)):
                        return
                elif self._stop.is_set():
                    return
        finally:
            self._hand_over(None)

    def _prepare(self, batch: list[Held]) -> Prepared:
        started = time.perf_counter()
        now, max_future_s = int(time.time()), self.settings.max_future_s
        try:
            prepared = prepare(batch, self.cleaner, now, max_future_s, self.settings.rollup_marks)
        except Exception:
            # A bug in a pure core must neither stop the ingest nor stall the session:
            # find the message that triggers it, dead-letter it with the error, keep the rest.
            log.exception("preparing a batch of %d messages failed; retrying them one by one", len(batch))
            self.metrics.prepare_failures.inc()
            prepared = prepare_one_by_one(batch, self.cleaner, now, max_future_s, self.settings.rollup_marks)
        self.metrics.prepare_seconds.observe(time.perf_counter() - started)
        return prepared

    def _hand_over(self, item: Prepared | None) -> bool:
        while not self._writer_done.is_set():
            try:
                self._prepared.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False  # the writer stopped (while InfluxDB was down): nothing more gets written

    # -- writer thread -----------------------------------------------------------------
    def _write_loop(self) -> None:
        """Write prepared batches and acknowledge them, in the order they were taken."""
        try:
            while (prepared := self._prepared.get()) is not None:
                if not self._commit(prepared):
                    return  # stopping while InfluxDB is down: nothing acked, the broker keeps it
        finally:
            self._writer_done.set()

    def _commit(self, p: Prepared) -> bool:
        """Write one batch, dead-letter what must be, count, then acknowledge its messages.
        False: stopping before InfluxDB took it (nothing acknowledged)."""
        m = self.metrics
        rejected = 0
        if p.lines:
            outcome = self.writer.write(p.lines, lambda: self.session.redelivered(p.messages))
            if outcome is None:
                self.session.settle(len(p.messages))  # the broker sends all of them again
                return True
            if not outcome:
                return False
            rejected = self.writer.rejected_readings
            m.last_write_time.set(time.time())
            if p.newest_ts is not None and p.newest_ts > m.newest_ts:
                m.newest_ts = p.newest_ts
        failed_appends = self.deadletter.failed_appends
        if p.dead:
            self.deadletter(p.dead)
        if self.settings.confirm_stored:
            self._confirm(p, dead_kept=self.deadletter.failed_appends == failed_appends)
        m.received_readings.inc(p.readings)
        m.written_readings.inc(p.readings - rejected)
        m.written_station_points.inc(p.station_points)
        for name, n in p.flagged.items():
            m.flagged.inc(n, name)
        m.batch_readings.observe(p.readings)
        m.acked_messages.inc(self.session.ack(p.messages))
        self.session.settle(len(p.messages))
        return True

    def _confirm(self, p: Prepared, dead_kept: bool) -> None:
        """Tell each station which of its readings the ingest is done with (after the write,
        before the acknowledgement: a crash in between makes the broker redeliver, and the
        rewrite and its confirmation are idempotent): those InfluxDB now holds, and those
        kept as dead letters (a resend would be refused again). Dead letters the file did not
        take (``dead_kept`` False) are not confirmed: the bridge keeps them and resends."""
        try:
            if dead_kept:
                dead = confirm.dead_readings((d.topic, d.payload) for d in p.dead)
                msgs = confirm.for_batch(p.keys, dead=dead)
            else:
                msgs = confirm.for_batch(p.keys, self.writer.rejected_lines if p.lines else ())
        except Exception:  # a bug here must not stop the readings: the bridges resend
            log.exception("could not build the stored confirmations of a batch; none sent for it")
            self.metrics.confirmation_failures += 1
            return
        for topic, payload in msgs:
            self.session.publish(topic, payload)
        self.metrics.confirmations_sent += len(msgs)


def run(settings: IngestSettings) -> None:
    consumer = Consumer(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer.start()
    log.info("ingest running: %s -> %s db=%s; metrics %s", consumer.subscription, settings.influx_url,
             settings.influx_db,
             f"on :{consumer.metrics_port}/metrics" if consumer.metrics_port else "off")
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()
