"""MQTT shell of the bridge: spool rows out at QoS 1; deleted on a stored
confirmation, or on PUBACK from a server that does not confirm.

Each spool row is handed to paho once per process; paho itself resends what is
in flight after a reconnect, and a restarted process starts again from the
spool. A backlog goes out oldest first as JSON arrays of up to ``batch``
readings. The broker's PUBACK for a message hands exactly its rows to
:meth:`Spool.published`, which deletes them until the server has shown that it
confirms (a message on ``civicair/v1/{station}/stored``, which the bridge
subscribes to), and from then on marks them sent. Readings sent and not
confirmed in time are due again (:meth:`Spool.due`) and go out again, oldest
first, in the same batches. The rules live in the spool; this module moves
messages.
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge import contract
from firmware_bridge.errors import ContractError
from firmware_bridge.spool import Spool

log = logging.getLogger("civicair.bridge.mqtt")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    keepalive: int = 30


class Publisher:
    #: Messages handed to paho and not yet acknowledged; bounds memory in an outage.
    MAX_IN_FLIGHT = 20
    #: Readings per message when replaying a backlog.
    BATCH = 100

    #: At most one log line per this many seconds about confirmations we cannot read …
    BAD_CONFIRMATION_LOG_EVERY_S = 600.0
    #: … and about resends.
    RESEND_LOG_EVERY_S = 600.0

    def __init__(self, spool: Spool, station: str, settings: MqttSettings, meta: dict | None = None,
                 confirmations: bool = True):
        self.spool = spool
        self.station = station
        self.settings = settings
        self.meta = meta or {}
        self.connected = threading.Event()
        self.published_readings = 0
        #: Subscribe to our stored confirmations (False: behave as a bridge from before them).
        self.confirmations = confirmations
        self.confirmations_received = 0
        self.bad_confirmations = 0
        self.resent_readings = 0
        self._resent_since_log = 0
        self._resent_logged_at = -1e9
        self._bad_logged_at = -1e9
        self._stored_topic = contract.stored_topic(station)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[int, list[int]] = {}  # mid -> spool ids
        # PUBACKs (mids) from paho's network thread, settled by the pump: paho calls
        # on_publish holding its own message lock, which publish() takes too, so on_publish
        # must not wait for a lock that the pump holds across publish().
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._last_id = 0
        self._thread = threading.Thread(target=self._pump, name="spool-pump", daemon=True)

        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"civicair-bridge-{station}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if settings.username:
            c.username_pw_set(settings.username, settings.password)
        if settings.tls:
            c.tls_set(ca_certs=settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        c.will_set(contract.status_topic(station), b"offline", qos=1, retain=True)
        c.max_inflight_messages_set(self.MAX_IN_FLIGHT)
        c.reconnect_delay_set(min_delay=1, max_delay=60)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self.client = c

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        self.client.loop_start()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline`` and disconnect cleanly (the will covers unclean exits)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._settle_acks()
        if self.connected.is_set():
            info = self.client.publish(contract.status_topic(self.station), b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        self._settle_acks()  # PUBACKs that came while stopping

    def publish_meta(self, meta: dict) -> None:
        """Replace the retained meta message (sent now if connected, else on connect)."""
        self.meta = meta
        if self.connected.is_set():
            self.client.publish(contract.meta_topic(self.station), json.dumps(meta), qos=1, retain=True)

    def wake(self) -> None:
        """New rows are in the spool."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self._pending.values())

    # -- paho callbacks (network thread) ------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker %s:%s refused the connection: %s",
                      self.settings.host, self.settings.port, reason_code)
            return
        log.info("connected to broker %s:%s; spool holds %d readings",
                 self.settings.host, self.settings.port, len(self.spool))
        if self.confirmations:
            # Clean session: subscribe on every connect. Confirmations sent while we were
            # away are lost; the readings they covered are resent when due, and the ingest
            # confirms them again (writes are idempotent).
            client.subscribe(self._stored_topic, qos=1)
        client.publish(contract.status_topic(self.station), b"online", qos=1, retain=True)
        if self.meta:
            client.publish(contract.meta_topic(self.station), json.dumps(self.meta), qos=1, retain=True)
        self.connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            log.warning("broker connection lost (%s); readings stay in the spool", reason_code)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Called with paho's message lock held: queue it, take no lock of ours (see _acks).
        self._acks.put(mid)
        self._wake.set()

    def _settle_acks(self) -> None:
        """Hand the rows of every PUBACK received so far to the spool (pump thread, and
        stop()). A mid that is not ours (status, meta) is ignored."""
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                ids = self._pending.pop(mid, None)
            if ids:
                self.spool.published(ids)
                self.published_readings += len(ids)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self._stored_topic:
            return  # nothing else is subscribed
        try:
            ranges = contract.decode_stored(bytes(msg.payload), self.station)
        except ContractError as exc:
            # Ignoring a confirmation is safe: the readings stay and are resent.
            self.bad_confirmations += 1
            now = time.monotonic()
            if now - self._bad_logged_at >= self.BAD_CONFIRMATION_LOG_EVERY_S:
                self._bad_logged_at = now
                log.warning("ignored a stored confirmation (%d so far): %s", self.bad_confirmations, exc)
            return
        first = not self.spool.confirming()
        deleted = self.spool.confirm(ranges)
        self.confirmations_received += 1
        if first:
            log.info("the server confirms stored readings: from now on a reading leaves the spool "
                     "when InfluxDB holds it, not when the broker has it")
        if deleted:
            self._wake.set()

    # -- pump (own thread) ------------------------------------------------------
    def _pump(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            self._settle_acks()
            while not self._stop.is_set():
                rows = self.spool.after(self._last_id, self.BATCH)
                if not rows or not self._send(rows):
                    break
                self._last_id = rows[-1].id
            if not self._stop.is_set() and self.connected.is_set():
                self._resend_due()

    def _resend_due(self) -> None:
        """Readings sent and not confirmed in time: out again, oldest first. Only while
        connected: paho itself resends what it holds after a reconnect."""
        now = time.time()
        next_due = self.spool.next_due()
        if next_due is None or next_due > now:
            return
        after = resent = 0
        while not self._stop.is_set() and self.connected.is_set():
            with self._lock:
                held = {i for ids in self._pending.values() for i in ids}
            rows = [r for r in self.spool.due(now, after, self.BATCH + len(held)) if r.id not in held]
            if not rows or not self._send(rows := rows[:self.BATCH]):
                break
            self.spool.resending([r.id for r in rows], now)
            resent += len(rows)
            after = rows[-1].id
        if resent:
            self.resent_readings += resent
            self._resent_since_log += resent
            mono = time.monotonic()
            if mono - self._resent_logged_at >= self.RESEND_LOG_EVERY_S:  # not a line a minute in an outage
                log.info("resent %d readings that no stored confirmation covered in time (%d since start)",
                         self._resent_since_log, self.resent_readings)
                self._resent_logged_at, self._resent_since_log = mono, 0

    def _send(self, rows: list) -> bool:
        """Hand one message of these rows to paho; False if there is no room or it failed."""
        topic = contract.readings_topic(self.station)
        with self._lock:
            if len(self._pending) >= self.MAX_IN_FLIGHT:
                return False
        if len(rows) == 1:
            payload = rows[0].payload
        else:
            payload = b"[" + b",".join(r.payload for r in rows) + b"]"
        with self._lock:
            # Held across publish so that the PUBACK (settled by this thread, later) always
            # finds the bookkeeping. on_publish never takes this lock (see _acks).
            info = self.client.publish(topic, payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.error("publish failed (%s); will retry", mqtt.error_string(info.rc))
                return False
            self._pending[info.mid] = [r.id for r in rows]
        if topic != rows[-1].topic:  # pragma: no cover - one topic per station
            log.error("spool row with foreign topic %s", rows[-1].topic)
        return True
