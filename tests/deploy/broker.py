"""The shipped broker config (deploy/mosquitto/) on a real Mosquitto, for the tests.

:func:`shipped_settings` keeps every line of ``deploy/mosquitto/mosquitto.conf``
except those naming paths and listeners, which :class:`civicair.services.Mosquitto`
sets for its temp dir; the ACL file is the shipped one, unchanged. So the tests run
the limits and rules that ship, not a copy of them.

Small paho helpers (connect and wait for CONNACK, collect messages) live here too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from civicair.services import Mosquitto

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
SHIPPED_ACL = REPO / "deploy" / "mosquitto" / "acl"

#: Keys the harness owns (they name ports, paths or TLS files of the container).
HARNESS_KEYS = {"listener", "persistence_location", "password_file", "acl_file", "log_dest", "log_type",
                "log_timestamp_format", "allow_anonymous", "user", "certfile", "keyfile", "cafile"}


def shipped_options(conf: Path = SHIPPED_CONF) -> dict[str, list[str]]:
    """Every active option of the shipped config: key -> values (in file order)."""
    options: dict[str, list[str]] = {}
    for line in conf.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        options.setdefault(key, []).append(value.strip())
    return options


def shipped_settings(conf: Path = SHIPPED_CONF) -> str:
    lines = []
    for key, values in shipped_options(conf).items():
        if key not in HARNESS_KEYS:
            lines += [f"{key} {v}" for v in values]
    return "\n".join(lines) + "\n"


def shipped_broker(state_dir: Path, passwd_file: Path, acl_file: Path = SHIPPED_ACL) -> Mosquitto:
    options = shipped_options()
    assert options["allow_anonymous"] == ["false"], "the shipped config must refuse anonymous clients"
    return Mosquitto(state_dir, allow_anonymous=False, password_file=passwd_file, acl_file=acl_file,
                     extra_config=shipped_settings())


@dataclass
class Client:
    """A connected paho client and what it saw."""

    client: mqtt.Client
    connack: object = None
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    subacks: list[list] = field(default_factory=list)
    pubacks: dict[int, object] = field(default_factory=dict)
    disconnects: list[object] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(10)
        return info

    def puback(self, info: mqtt.MQTTMessageInfo, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if info.mid in self.pubacks:
                    return self.pubacks[info.mid]
            time.sleep(0.01)
        raise AssertionError(f"no PUBACK for mid {info.mid}")

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10.0) -> list:
        before = len(self.subacks)
        self.client.subscribe(topic, qos=qos)
        deadline = time.monotonic() + timeout
        while len(self.subacks) == before:
            if time.monotonic() > deadline:
                raise AssertionError(f"no SUBACK for {topic}")
            time.sleep(0.01)
        return self.subacks[-1]

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m.payload for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(broker: Mosquitto, username: str | None, password: str | None, client_id: str = "",
            protocol: int = mqtt.MQTTv311, receive_maximum: int | None = None, clean: bool = True,
            manual_ack: bool = False, timeout: float = 10.0) -> Client:
    """Connect and wait for the broker's answer (CONNACK or a closed socket)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                    **({} if protocol == mqtt.MQTTv5 else {"clean_session": clean}))
    if username is not None:
        c.username_pw_set(username, password)
    if manual_ack:
        c.manual_ack_set(True)
    out = Client(c)

    def on_connect(client, userdata, flags, reason_code, properties):
        out.connack = reason_code
        if not reason_code.is_failure:
            out.connected.set()
        out.answered.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        out.disconnects.append(reason_code)
        out.answered.set()

    def on_message(client, userdata, msg):
        with out.lock:
            out.messages.append(msg)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        out.subacks.append(reason_codes)

    def on_publish(client, userdata, mid, reason_code, properties):
        with out.lock:
            out.pubacks[mid] = reason_code

    c.on_connect, c.on_disconnect, c.on_message = on_connect, on_disconnect, on_message
    c.on_subscribe, c.on_publish = on_subscribe, on_publish
    props = None
    kwargs = {}
    if protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        if receive_maximum:
            props.ReceiveMaximum = receive_maximum
        if not clean:
            props.SessionExpiryInterval = 3600
        kwargs = {"clean_start": clean, "properties": props}
    c.reconnect_delay_set(60, 60)  # no quiet reconnects inside a test
    c.connect(broker.host, broker.port, keepalive=30, **kwargs)
    c.loop_start()
    if not out.answered.wait(timeout):
        out.close()
        raise AssertionError(f"broker did not answer {username!r} within {timeout:.0f} s")
    return out
