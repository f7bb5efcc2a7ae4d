"""The MQTT session of the ingest: persistent, QoS 1, manual acknowledgement, bounded.

Owns the paho client (MQTT 5, a fixed client id, ``clean_start=False`` so the broker
keeps the session while the ingest is away), the subscriptions, and the buffer between
paho's network thread and the consumer: :meth:`Session._on_message` only appends a
:class:`~ingest.batch.Held` to it; :meth:`Session.take` hands out batches by size (in
readings) or age. Back-pressure: the broker sends at most ``receive_maximum``
unacknowledged messages, and where it does not keep to that (Mosquitto 2.0.11 draining
a backlog, see docs/ingest.md) the network thread waits, so TCP pushes back. Acks
(:meth:`Session.ack`) go out in the order received, and never for a message of an
earlier connection (packet ids are per connection).

Must not decode, clean or write anything: what a message means is :mod:`ingest.batch`'s,
when it may be acknowledged is :mod:`ingest.consumer`'s.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from typing import cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from civicair.schema import contract
from ingest.batch import Held, estimate_readings
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings

log = logging.getLogger("civicair.ingest")

#: Longest wait of the network thread for room under Receive Maximum [s]: the keepalive
#: must still go out if the writer is stuck.
BACK_PRESSURE_WAIT_S = 10


class Session:
    """The broker connection and the buffer of messages received and not yet settled.

    Parameters
    ----------
    settings : IngestSettings
        Broker, client id, session expiry, Receive Maximum, batch size and age.
    metrics : IngestMetrics
        The message counters (received, redelivered, settled, held, waits) live there.
    stop : threading.Event
        Set by :meth:`close`; :meth:`take` returns what is left once it is set.
    """

    def __init__(self, settings: IngestSettings, metrics: IngestMetrics, stop: threading.Event) -> None:
        self.settings = settings
        self.metrics = metrics
        self._stop = stop
        self._buf: deque[Held] = deque()
        self._buf_readings = 0
        self._first_at = 0.0  # when the oldest buffered message arrived (monotonic)
        # Both conditions share one lock (threading.Condition's default, an RLock).
        buf_lock = threading.RLock()
        self._buf_cond = threading.Condition(buf_lock)
        # Signalled when messages are settled: the network thread may wait on it (see _on_message).
        self._space = threading.Condition(buf_lock)
        self._session_resumed = False
        self._generation = 0
        self._closing = False  # stop taking new messages; they stay with the broker
        self.connected = threading.Event()

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

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Connect (in the background, reconnecting for ever) and start paho's network thread."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def close(self) -> None:
        """Stop taking messages (what arrives now stays with the broker) and wake every waiter."""
        with self._buf_cond:
            self._closing = True
            self._stop.set()
            self._buf_cond.notify_all()
            self._space.notify_all()

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1, not retained (the dead letter's copy on its topic, stored confirmations)."""
        self.client.publish(topic, payload, qos=1)

    # -- paho callbacks (network thread) ------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        with self._buf_cond:
            self._generation += 1
            self._session_resumed = flags.session_present
            if self._generation > 1 and not flags.session_present:
                # We connected before with clean_start=False: the broker lost our session
                # (restarted without persistence, or crashed before it saved it). Whatever it
                # queued for us is gone; bridges that get stored confirmations resend it.
                self.metrics.sessions_lost += 1
                log.warning("broker answered with a new session where ours should have been resumed: "
                            "messages queued for this ingest are lost; stations with stored "
                            "confirmations resend them, older bridges cannot")
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
        readings = estimate_readings(payload)
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
                                     or self._closing, timeout=BACK_PRESSURE_WAIT_S)
            if self._closing:
                return  # not buffered, not acknowledged: the broker keeps it for the next start
            if not self._buf:
                self._first_at = time.monotonic()
            self._buf.append(Held(msg.topic, payload, msg.mid, msg.qos, self._generation, readings))
            self._buf_readings += readings
            m.received_messages += 1
            if msg.dup:
                m.redelivered_messages += 1
            held = m.received_messages - m.settled_messages
            if held > m.held_max:
                m.held_max = held
            if self._buf_readings >= self.settings.batch_size or held >= limit:
                self._buf_cond.notify()

    # -- the consumer's side ----------------------------------------------------------------
    def take(self) -> tuple[list[Held], bool]:
        """The next batch, in the order received, and whether it was full (enough readings,
        or Receive Maximum held); blocks until one is full, the oldest message is
        ``batch_age_s`` old, or stop is set (then: what is left, possibly nothing)."""
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
            batch: list[Held] = []
            taken = 0
            while self._buf and taken < size:
                item = self._buf.popleft()
                batch.append(item)
                taken += item.readings
            self._buf_readings -= taken
            # What is left waits at most one more batch age from now.
            self._first_at = time.monotonic()
        return batch, full

    def ack(self, messages: list[Held]) -> int:
        """Acknowledge, in order, the messages of the current connection; returns how many.

        A message from before a reconnect is redelivered by the broker under a new packet
        id; acknowledging the old id could acknowledge another message."""
        with self._buf_cond:
            generation = self._generation
        ack = self.client.ack
        acked = 0
        for held in messages:
            if held.generation == generation and held.qos:
                ack(held.mid, held.qos)
                acked += 1
        return acked

    def settle(self, count: int) -> None:
        """``count`` messages are done with (acknowledged, or left to redelivery): room for more."""
        with self._buf_cond:
            self.metrics.settled_messages += count
            self._space.notify_all()

    def redelivered(self, messages: list[Held]) -> bool:
        """Will the broker send every one of these again (we reconnected to a resumed session)?"""
        with self._buf_cond:
            return self._session_resumed and all(h.generation != self._generation for h in messages)
