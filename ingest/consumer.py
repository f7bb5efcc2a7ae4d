"""MQTT shell of the ingest: persistent session, QoS 1, manual acknowledgement.

paho's network thread only appends messages to a buffer. A prepare thread takes
a batch (by size or age) and decodes, cleans and encodes it with the pure cores;
a writer thread writes it to InfluxDB (retrying while InfluxDB is down) and only
then acknowledges every message of the batch, in the order received. While nothing
is acknowledged the broker sends at most ``receive_maximum`` messages: that is
the back-pressure that keeps memory bounded through a database outage.

Readings come through the shared subscription (several processes split them);
station meta and status come through a plain subscription (retained messages are
not sent on shared subscriptions) and go to measurement ``station``.

Owns: the MQTT session, batching, the write/ack ordering, the dead letter, the
metrics values and the state-change log lines. Must not own decoding, cleaning or
encoding (the pure cores in :mod:`ingest.columns`, :mod:`ingest.clean`,
:mod:`ingest.lineprotocol`, :mod:`ingest.meta`).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import signal
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from civicair.influx import Influx, InfluxRejected, InfluxUnavailable
from civicair.schema import contract
from civicair.schema.errors import ContractError
from civicair.schema.qc import FUTURE_TOLERANCE_S
from ingest import history, meta
from ingest.clean import Cleaner
from ingest.columns import DeadLetter, decode
from ingest.lineprotocol import MEASUREMENT, encode, encode_amendments
from ingest.marks import batch_marks
from ingest.metrics import IngestMetrics, MetricsServer, reason_class
from ingest.settings import IngestSettings

log = logging.getLogger("civicair.ingest")

#: A buffered message: topic, payload, packet id, QoS, connection generation,
#: estimated readings (for batch sizing; exact count is known after decoding).
_Held = tuple[str, bytes, int, int, int, int]

_READINGS_LINE = MEASUREMENT.encode() + b","
#: At most one dead-letter summary line per this many seconds (no per-message logs).
_DEADLETTER_LOG_EVERY_S = 60.0
#: Bytes of a dead letter's payload copied to the dead-letter topic (the file keeps all of it).
DEADLETTER_TOPIC_PAYLOAD = 4096


@dataclass(slots=True)
class _Prepared:
    messages: list[_Held]
    lines: bytes
    readings: int
    station_points: int
    newest_ts: int | None
    dead: list[DeadLetter]
    flagged: dict[str, int] = field(default_factory=dict)


class Consumer:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.influx = Influx(settings.influx())
        #: Flags and corrections; only the preparer thread uses it after start().
        self.cleaner = Cleaner()
        self.metrics = IngestMetrics(receive_maximum=settings.receive_maximum)
        self._buf: deque[_Held] = deque()
        self._buf_readings = 0
        self._first_at = 0.0  # when the oldest buffered message arrived (monotonic)
        # Both conditions share one lock (threading.Condition's default, an RLock).
        buf_lock = threading.RLock()
        self._buf_cond = threading.Condition(buf_lock)
        # Signalled when messages are settled: the network thread may wait on it (see _on_message).
        self._space = threading.Condition(buf_lock)
        self._session_resumed = False
        self._generation = 0
        self._stop = threading.Event()
        self._closing = False  # stop taking new messages; they stay with the broker
        self.connected = threading.Event()
        # Two stages, so that the next batch is decoded and encoded while InfluxDB takes this
        # one. Measured with bench/ingest_throughput.py on two busy cores: single-reading
        # messages 4.1-4.7k -> 5.5-8.0k readings/s, 100-reading messages 13-16k -> 18-25k.
        # One prepared batch waits at most: what is held stays bounded.
        self._preparer = threading.Thread(target=self._prepare_loop, name="ingest-prepare", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="influx-writer", daemon=True)
        self._prepared: queue.Queue[_Prepared | None] = queue.Queue(maxsize=1)
        self._writer_done = threading.Event()
        self._deadletter_file = Path(settings.deadletter_path)
        self._server: MetricsServer | None = None
        # State for the one-line-per-change log and /health.
        self._influx_down_since: float | None = None
        self._influx_error = ""
        self._draining_since: float | None = None
        self._draining_from: float = 0
        self._dead_logged_at = 0.0
        self._dead_since_log = 0
        self._rejected_readings = 0  # lines of the batch being committed that InfluxDB refused

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.mqtt_client_id,
                        protocol=mqtt.MQTTv5)
        c.manual_ack_set(True)
        if settings.mqtt_username:
            pw = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            c.username_pw_set(settings.mqtt_username, pw)
        if settings.mqtt_tls:
            c.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c

    @property
    def subscription(self) -> str:
        topic = contract.readings_subscription()
        group = self.settings.share_group
        return f"$share/{group}/{topic}" if group else topic

    @property
    def station_subscriptions(self) -> list[str]:
        if not self.settings.subscribe_station_topics:
            return []
        root = contract.TOPIC_ROOT
        return [f"{root}/+/meta", f"{root}/+/status"]

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
        try:
            self.influx.create_database()
        except (InfluxUnavailable, InfluxRejected) as exc:
            # Not fatal: InfluxDB may be down (the writer holds batches, unacknowledged, until
            # it answers) or refuse CREATE DATABASE (2.x/3: the bucket is made beforehand).
            log.warning("could not make sure database %r exists (%s); writing anyway",
                        self.settings.influx_db, str(exc)[:200])
        self._restore_history()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30,
                                  clean_start=False, properties=props)
        self.client.loop_start()
        self._preparer.start()
        self._writer.start()

    def _restore_history(self) -> None:
        """Before the first message: the quality history from the database, so a restart
        does not leave the next windows of every series unjudged. Best effort."""
        lookback = self.settings.history_lookback_s
        if not lookback:
            return
        try:
            got = history.restore(self.influx, self.cleaner, lookback)
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
        with self._buf_cond:
            self._closing = True
            self._stop.set()
            self._buf_cond.notify_all()
            self._space.notify_all()
        self._preparer.join(30)
        self._writer.join(30)
        self.client.disconnect()
        self.client.loop_stop()
        self.influx.close()
        if self._server:
            self._server.stop()
        m = self.metrics
        log.info("ingest stopped: %d readings written, %d dead letters",
                 m.written_readings.value(), m.deadlettered_count())

    # -- health -----------------------------------------------------------------
    def health(self) -> tuple[bool, dict]:
        reasons = []
        if not self.connected.is_set():
            reasons.append("not connected to the MQTT broker")
        if self._influx_down_since is not None:
            reasons.append(f"InfluxDB writes failing for {time.monotonic() - self._influx_down_since:.0f} s: "
                           f"{self._influx_error}")
        ok = not reasons
        return ok, {
            "status": "ok" if ok else "unavailable",
            "reasons": reasons,
            "mqtt_connected": self.connected.is_set(),
            "influxdb_ok": self._influx_down_since is None,
            "buffered_messages": self.metrics.held(),
            "draining": self._draining_since is not None,
        }

    # -- paho callbacks (network thread) ------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        with self._buf_cond:
            self._generation += 1
            self._session_resumed = flags.session_present
            released = 0
            if flags.session_present:
                # The broker redelivers every unacknowledged message of a resumed session
                # (measured: Mosquitto 2.0 does, with DUP set); holding our copies too would
                # let memory outgrow receive_maximum. Without a session ours are the only
                # copies: keep them and write them (they cannot be acknowledged any more).
                released = len(self._buf)
                self._buf.clear()
                self._buf_readings = 0
                self.metrics.settled_messages += released
                self._space.notify_all()
        opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe([(t, opts) for t in (self.subscription, *self.station_subscriptions)])
        log.info("connected to broker %s:%s (session %s%s); subscribed to %s",
                 self.settings.mqtt_host, self.settings.mqtt_port,
                 "resumed" if flags.session_present else "new",
                 f", {released} buffered messages left to redelivery" if released else "",
                 ", ".join((self.subscription, *self.station_subscriptions)))
        self.metrics.mqtt_connected.set(1)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._closing:
            log.warning("broker connection lost (%s); unacknowledged messages will be redelivered",
                        reason_code)
        self.metrics.mqtt_connected.set(0)
        self.connected.clear()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        # paho types payload bytes | bytearray (a message being published may hold either);
        # a received PUBLISH is decoded with struct.unpack, which always gives bytes.
        payload = cast(bytes, msg.payload)
        # Batches are sized in readings; an array payload holds one "ts" per reading.
        # A rough count is enough here: the exact one is known after decoding.
        readings = max(payload.count(b'"ts"'), 1) if payload[:1] == b"[" else 1
        m = self.metrics
        limit = self.settings.receive_maximum
        with self._buf_cond:
            if m.received_messages - m.settled_messages >= limit and not self._closing:
                # The broker sends more than our Receive Maximum: Mosquitto 2.0.11 does,
                # once acknowledgements flow while it holds a queued backlog (measured, see
                # docs/ingest.md). Holding the network thread stops reading the socket, so
                # TCP pushes back on the broker and our memory stays bounded. Bounded wait:
                # the keepalive must still go out if the writer is stuck.
                m.receive_maximum_waits += 1
                self._space.wait_for(lambda: m.received_messages - m.settled_messages < limit
                                     or self._closing, timeout=10)
            if self._closing:
                return  # not buffered, not acknowledged: the broker keeps it for the next start
            if not self._buf:
                self._first_at = time.monotonic()
            self._buf.append((msg.topic, payload, msg.mid, msg.qos, self._generation, readings))
            self._buf_readings += readings
            m.received_messages += 1
            if msg.dup:
                m.redelivered_messages += 1
            held = m.received_messages - m.settled_messages
            if held > m.held_max:
                m.held_max = held
            if self._buf_readings >= self.settings.batch_size or held >= limit:
                self._buf_cond.notify()

    # -- writer thread ---------------------------------------------------------------
    def _take_batch(self) -> list[_Held]:
        size, age = self.settings.batch_size, self.settings.batch_age_s
        limit, m = self.settings.receive_maximum, self.metrics
        with self._buf_cond:
            full = False
            while not self._stop.is_set():
                # Full: enough readings, or the broker will not send more until we acknowledge.
                if self._buf_readings >= size or (self._buf and m.held() >= limit):
                    full = True
                    break
                if self._buf:
                    wait = self._first_at + age - time.monotonic()
                    if wait <= 0:
                        break
                else:
                    wait = age
                self._buf_cond.wait(wait)
            batch: list[_Held] = []
            taken = 0
            while self._buf and taken < size:
                item = self._buf.popleft()
                batch.append(item)
                taken += item[5]
            self._buf_readings -= taken
            # What is left waits at most one more batch age from now.
            self._first_at = time.monotonic()
        if batch and not full and self._draining_since is not None:
            self._recovered()
        return batch

    def _prepare_loop(self) -> None:
        """Take batches and prepare them (decode, clean, encode), in order, one ahead of the writer."""
        try:
            while True:
                batch = self._take_batch()
                if batch:
                    try:
                        prepared = self._prepare(batch)
                    except Exception:
                        prepared = self._prepare_one_by_one(batch)
                    if not self._hand_over(prepared):
                        return
                elif self._stop.is_set():
                    return
        finally:
            self._hand_over(None)

    def _hand_over(self, item: _Prepared | None) -> bool:
        while not self._writer_done.is_set():
            try:
                self._prepared.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False  # the writer stopped (while InfluxDB was down): nothing more gets written

    def _write_loop(self) -> None:
        """Write prepared batches and acknowledge them, in the order they were taken."""
        try:
            while (prepared := self._prepared.get()) is not None:
                if not self._commit(prepared):
                    return  # stopping while InfluxDB is down: nothing acked, the broker keeps it
        finally:
            self._writer_done.set()

    def _prepare(self, messages: list[_Held]) -> _Prepared:
        started = time.perf_counter()
        readings_msgs: list[tuple[str, bytes]] = []
        station_lines: list[bytes] = []
        dead: list[DeadLetter] = []
        now = int(time.time())
        for topic, payload, *_ in messages:
            if contract.topic_kind(topic) == contract.READINGS:
                readings_msgs.append((topic, payload))
            else:
                line = self._station_line(topic, payload, now, dead)
                if line:
                    station_lines.append(line)
        columns, bad = decode(readings_msgs, latest_ts=now + self.settings.max_future_s)
        dead.extend(bad)
        lines = b""
        newest = None
        flagged: dict[str, int] = {}
        if len(columns):
            self.cleaner.clean(columns)
            lines = encode(columns)
            if columns.amended is not None:  # an A/B pair completed across batches
                lines += encode_amendments(columns.amended)
            if self.settings.rollup_marks:  # which hours the rollup worker must redo
                lines += batch_marks(columns, now)
            # Lag is measured against live readings: one from a clock years ahead must not
            # pin the gauge below zero for ever.
            ts = columns.ints["ts"]
            live = ts[ts <= now + FUTURE_TOLERANCE_S]
            newest = int(live.max()) if len(live) else None
            flagged = self.metrics.count_flags(columns.derived.get("qc"))
            if columns.amended is not None:  # written unflagged before, flagged now
                flagged["ab_disagreement"] = flagged.get("ab_disagreement", 0) + len(columns.amended)
        self.metrics.prepare_seconds.observe(time.perf_counter() - started)
        return _Prepared(messages, lines + b"".join(station_lines), len(columns), len(station_lines),
                         newest, dead, flagged)

    def _prepare_one_by_one(self, messages: list[_Held]) -> _Prepared:
        """A bug in a pure core must neither stop the ingest nor stall the session:
        find the message that triggers it, dead-letter it with the error, keep the rest."""
        log.exception("preparing a batch of %d messages failed; retrying them one by one", len(messages))
        self.metrics.prepare_failures.inc()
        whole = _Prepared(messages, b"", 0, 0, None, [])
        lines = []
        for m in messages:
            try:
                p = self._prepare([m])
            except Exception as exc:
                reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
                whole.dead.append(DeadLetter(m[0], m[1], reason))
                continue
            lines.append(p.lines)
            whole.readings += p.readings
            whole.station_points += p.station_points
            whole.dead.extend(p.dead)
            for name, n in p.flagged.items():
                whole.flagged[name] = whole.flagged.get(name, 0) + n
            if p.newest_ts is not None:
                whole.newest_ts = max(whole.newest_ts or 0, p.newest_ts)
        whole.lines = b"".join(lines)
        return whole

    @staticmethod
    def _station_line(topic: str, payload: bytes, now: int, dead: list[DeadLetter]) -> bytes | None:
        if not payload:
            return None  # an empty retained message clears the topic: nothing to record
        try:
            station = contract.station_from_topic(topic)
            kind = contract.topic_kind(topic)
            if kind == contract.META:
                return meta.meta_line(station, payload, now)
            if kind == contract.STATUS:
                return meta.status_line(station, payload, now)
            raise ContractError(f"topic {topic!r} is not a civicair/v1 readings, meta or status topic")
        except (ContractError, meta.MetaError) as exc:
            dead.append(DeadLetter(topic, payload, str(exc)))
            return None

    def _commit(self, p: _Prepared) -> bool:
        m = self.metrics
        self._rejected_readings = 0
        if p.lines:
            outcome = self._write_with_retry(p.lines, lambda: self._redelivered(p.messages))
            if outcome is None:
                self._settle(len(p.messages))  # the broker sends all of them again
                return True
            if not outcome:
                return False
            m.last_write_time.set(time.time())
            if p.newest_ts is not None and p.newest_ts > m.newest_ts:
                m.newest_ts = p.newest_ts
        if p.dead:
            self._deadletter(p.dead)
        m.received_readings.inc(p.readings)
        m.written_readings.inc(p.readings - self._rejected_readings)
        m.written_station_points.inc(p.station_points)
        for name, n in p.flagged.items():
            m.flagged.inc(n, name)
        m.batch_readings.observe(p.readings)
        with self._buf_cond:
            generation = self._generation
        ack = self.client.ack
        acked = 0
        for _topic, _payload, mid, qos, gen, _n in p.messages:
            # A message from before a reconnect is redelivered by the broker under a
            # new packet id; acknowledging the old id could acknowledge another message.
            if gen == generation and qos:
                ack(mid, qos)
                acked += 1
        m.acked_messages.inc(acked)
        self._settle(len(p.messages))
        return True

    def _settle(self, count: int) -> None:
        with self._buf_cond:
            self.metrics.settled_messages += count
            self._space.notify_all()

    def _redelivered(self, messages: list[_Held]) -> bool:
        """Will the broker send every one of these again (we reconnected to a resumed session)?"""
        with self._buf_cond:
            return self._session_resumed and all(m[4] != self._generation for m in messages)

    # -- InfluxDB ----------------------------------------------------------------------
    def _write_with_retry(self, lines: bytes, abandon=lambda: False) -> bool | None:
        """Write until InfluxDB takes it: True; False when stopping; None when ``abandon()``
        says the batch need not be written any more (its messages come again)."""
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                self.influx.write(lines)
            except InfluxUnavailable as exc:
                self._influx_failed(exc)
            except InfluxRejected as exc:
                if exc.status != 404:
                    # A bad line is a data problem: find it, keep the rest.
                    self._influx_ok()
                    return self._write_bisect(lines, exc)
                # "database not found": the server was set up afresh; make it and retry.
                self._influx_failed(exc)
                try:
                    self.influx.create_database()
                except (InfluxUnavailable, InfluxRejected):
                    pass
            else:
                self.metrics.write_seconds.observe(time.perf_counter() - started)
                self._influx_ok()
                return True
            self.metrics.write_retries.inc()
            if self._stop.wait(delay):
                return False
            if abandon():
                return None
            delay = min(delay * 2, 30.0)

    def _write_bisect(self, lines: bytes, exc: InfluxRejected) -> bool:
        rows = lines.splitlines()
        if len(rows) == 1:
            if rows[0].startswith(_READINGS_LINE):
                self._rejected_readings += 1
            self._deadletter([DeadLetter("influxdb", rows[0], f"rejected by InfluxDB: {exc.message}")])
            return True
        half = len(rows) // 2
        for part in (rows[:half], rows[half:]):
            if not self._write_with_retry(b"\n".join(part) + b"\n"):
                return False
        return True

    def _influx_failed(self, exc: Exception) -> None:
        self._influx_error = str(exc)[:300]
        self.metrics.influxdb_up.set(0)
        if self._influx_down_since is None:
            self._influx_down_since = time.monotonic()
            self._draining_since = None
            log.error("InfluxDB down (%s); holding %d messages unacknowledged, the broker queues the rest",
                      self._influx_error, self.metrics.held())

    def _influx_ok(self) -> None:
        self.metrics.influxdb_up.set(1)
        if self._influx_down_since is not None:
            down = time.monotonic() - self._influx_down_since
            self._influx_down_since = None
            self._draining_since = time.monotonic()
            self._draining_from = self.metrics.written_readings.value()
            log.info("InfluxDB back after %.0f s; backlog draining", down)

    def _recovered(self) -> None:
        since, self._draining_since = self._draining_since, None
        if since is not None:
            log.info("recovered: backlog drained in %.0f s (%d readings written meanwhile)",
                     time.monotonic() - since, self.metrics.written_readings.value() - self._draining_from)

    # -- dead letters -------------------------------------------------------------------
    def _deadletter(self, dead: list[DeadLetter]) -> None:
        """Each dead letter to the file (whole payload) and to the dead-letter topic (the
        payload cut to :data:`DEADLETTER_TOPIC_PAYLOAD` bytes, with its length and sha256).

        The topic copy is bounded because a station controls its payload: escaped, a
        payload near the broker's ``max_packet_size`` would make a record above it, and the
        broker would drop the ingest's connection on every attempt to publish it. A file
        that cannot be written (disk full, a directory in its place) is logged and the
        message is still acknowledged: a dead letter must never stop the readings."""
        now = time.time()
        lines = []
        for d in dead:
            cls = reason_class(d.reason)
            self.metrics.deadlettered.inc(1, cls)
            head = {"received": now, "topic": d.topic, "class": cls, "reason": d.reason}
            lines.append(orjson.dumps({**head, "payload": d.payload.decode("utf-8", "backslashreplace")}))
            short = d.payload[:DEADLETTER_TOPIC_PAYLOAD]
            self.client.publish(contract.DEADLETTER_TOPIC, orjson.dumps({
                **head, "payload": short.decode("utf-8", "backslashreplace"),
                "payload_bytes": len(d.payload), "payload_truncated": len(short) < len(d.payload),
                "payload_sha256": hashlib.sha256(d.payload).hexdigest()}), qos=1)
        try:
            with self._deadletter_file.open("ab") as f:
                f.write(b"\n".join(lines) + b"\n")
        except OSError as exc:
            self.metrics.deadletter_file_errors.inc(len(dead))
            log.error("could not append %d dead letter(s) to %s (%s); they went to %s only",
                      len(dead), self._deadletter_file, exc, contract.DEADLETTER_TOPIC)
        self._dead_since_log += len(dead)
        mono = time.monotonic()
        if mono - self._dead_logged_at >= _DEADLETTER_LOG_EVERY_S:
            log.warning("%d message(s) dead-lettered to %s and %s since the last report; latest: %s",
                        self._dead_since_log, self._deadletter_file, contract.DEADLETTER_TOPIC,
                        dead[-1].reason)
            self._dead_logged_at, self._dead_since_log = mono, 0


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

