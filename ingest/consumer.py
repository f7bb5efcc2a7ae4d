"""MQTT shell of the ingest: persistent session, QoS 1, manual acknowledgement.

paho's network thread only appends messages to a buffer. A writer thread takes
a batch (by size or age), decodes, cleans and encodes it with the pure cores,
writes it to InfluxDB (retrying while InfluxDB is down), and only then
acknowledges every message of the batch, in the order received. While nothing
is acknowledged the broker sends at most ``receive_maximum`` messages: that is
the back-pressure that keeps memory bounded through a database outage.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from civicair.influx import Influx, InfluxRejected, InfluxUnavailable
from firmware_bridge import contract
from ingest.clean import clean
from ingest.columns import DeadLetter, decode
from ingest.lineprotocol import encode
from ingest.settings import IngestSettings

log = logging.getLogger("civicair.ingest")


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    generation: int
    received: float


class Stats:
    def __init__(self) -> None:
        self.received_messages = 0
        self.written_readings = 0
        self.deadlettered = 0
        self.batches = 0
        self.write_retries = 0


class Consumer:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.influx = Influx(settings.influx())
        self.stats = Stats()
        self._buf: deque[_Message] = deque()
        self._buf_cond = threading.Condition()
        self._generation = 0
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="influx-writer", daemon=True)
        self._deadletter_file = Path(settings.deadletter_path)

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

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        self.influx.create_database()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30,
                                  clean_start=False, properties=props)
        self.client.loop_start()
        self._writer.start()

    def stop(self) -> None:
        """Flush what is buffered (if InfluxDB takes it), then disconnect."""
        self._stop.set()
        with self._buf_cond:
            self._buf_cond.notify_all()
        self._writer.join(30)
        self.client.disconnect()
        self.client.loop_stop()
        self.influx.close()
        log.info("ingest stopped: %d readings written, %d dead letters",
                 self.stats.written_readings, self.stats.deadlettered)

    # -- paho callbacks (network thread) ------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        with self._buf_cond:
            self._generation += 1
        log.info("connected to broker %s:%s (session %s); subscribing to %s",
                 self.settings.mqtt_host, self.settings.mqtt_port,
                 "resumed" if flags.session_present else "new", self.subscription)
        client.subscribe(self.subscription, qos=1)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            log.warning("broker connection lost (%s); unacknowledged messages will be redelivered",
                        reason_code)
        self.connected.clear()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        with self._buf_cond:
            self._buf.append(_Message(msg.topic, msg.payload, msg.mid, self._generation,
                                      time.monotonic()))
            self.stats.received_messages += 1
            if len(self._buf) >= self.settings.batch_size:
                self._buf_cond.notify()

    # -- writer thread ---------------------------------------------------------------
    def _take_batch(self) -> list[_Message]:
        size, age = self.settings.batch_size, self.settings.batch_age_s
        with self._buf_cond:
            while not self._stop.is_set():
                if len(self._buf) >= size:
                    break
                if self._buf:
                    wait = self._buf[0].received + age - time.monotonic()
                    if wait <= 0:
                        break
                else:
                    wait = age
                self._buf_cond.wait(wait)
            count = min(size, len(self._buf))
            return [self._buf.popleft() for _ in range(count)]

    def _write_loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch:
                self._process(batch)
            elif self._stop.is_set():
                return

    def _process(self, messages: list[_Message]) -> None:
        columns, dead = decode((m.topic, m.payload) for m in messages)
        if len(columns):
            clean(columns)
            lines = encode(columns)
            if not self._write_with_retry(lines):
                return  # stopping while InfluxDB is down: nothing acked, the broker keeps it
        if dead:
            self._deadletter(dead)
        self.stats.written_readings += len(columns)
        self.stats.batches += 1
        with self._buf_cond:
            generation = self._generation
        for m in messages:
            # A message from before a reconnect is redelivered by the broker under a
            # new packet id; acknowledging the old id could acknowledge another message.
            if m.generation == generation:
                self.client.ack(m.mid, 1)

    def _write_with_retry(self, lines: bytes) -> bool:
        delay, down_since = 0.5, None
        while True:
            try:
                self.influx.write(lines)
            except InfluxUnavailable as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.error("InfluxDB down (%s); holding the batch and retrying", exc)
                self.stats.write_retries += 1
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 30.0)
                continue
            except InfluxRejected as exc:
                # A bad line is a data problem: find it, keep the rest.
                return self._write_bisect(lines, exc)
            if down_since is not None:
                log.info("InfluxDB back after %.0f s; backlog draining", time.monotonic() - down_since)
            return True

    def _write_bisect(self, lines: bytes, exc: InfluxRejected) -> bool:
        rows = lines.splitlines()
        if len(rows) == 1:
            log.error("InfluxDB rejected a line (%s): %r", exc.message, rows[0][:200])
            self._deadletter([DeadLetter("influxdb", rows[0], f"rejected by InfluxDB: {exc.message}")])
            return True
        half = len(rows) // 2
        for part in (rows[:half], rows[half:]):
            if not self._write_with_retry(b"\n".join(part) + b"\n"):
                return False
        return True

    def _deadletter(self, dead: list[DeadLetter]) -> None:
        self.stats.deadlettered += len(dead)
        now = time.time()
        with self._deadletter_file.open("ab") as f:
            for d in dead:
                record = {"received": now, "topic": d.topic, "reason": d.reason,
                          "payload": d.payload.decode("utf-8", "backslashreplace")}
                f.write(orjson.dumps(record) + b"\n")
                self.client.publish(contract.DEADLETTER_TOPIC, orjson.dumps(record), qos=1)
        log.warning("%d message(s) dead-lettered to %s; first: %s", len(dead),
                    self._deadletter_file, dead[0].reason)


def run(settings: IngestSettings) -> None:
    import signal

    consumer = Consumer(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer.start()
    log.info("ingest running: %s -> %s db=%s", consumer.subscription, settings.influx_url,
             settings.influx_db)
    try:
        last = 0
        while not stop.wait(10):
            if consumer.stats.written_readings != last:
                last = consumer.stats.written_readings
                log.debug("written %d readings", last)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()
