"""The shipped broker rules (deploy/mosquitto/) on a real Mosquitto.

Accounts are written by civicair.stations into a password file; the ACL file is
the shipped one; the limits are the shipped ones (see tests/deploy/broker.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from civicair.stations import INGEST_ACCOUNT, PasswordFile, revoke_station
from tests.conftest import wait_until
from tests.deploy.broker import connect, shipped_broker, shipped_options

PASSWORDS = {INGEST_ACCOUNT: "ingest-secret", f"{INGEST_ACCOUNT}-2": "ingest-secret",
             "st-1": "station-one-pw", "st-2": "station-two-pw"}
SHARED = "$share/ingest/civicair/v1/+/readings"
NOT_AUTHORIZED = 135  # MQTT 5 reason code "Not authorized"


@pytest.fixture
def passwd(tmp_path: Path) -> Path:
    path = tmp_path / "auth" / "passwd"
    path.parent.mkdir()
    pw = PasswordFile(path)
    for user, password in PASSWORDS.items():
        pw.set(user, password)
    pw.save()
    return path


@pytest.fixture
def broker(tmp_path: Path, passwd: Path):
    server = shipped_broker(tmp_path / "mosquitto", passwd)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ingest(broker):
    c = connect(broker, INGEST_ACCOUNT, PASSWORDS[INGEST_ACCOUNT], client_id=INGEST_ACCOUNT,
                protocol=mqtt.MQTTv5, receive_maximum=10000, clean=False)
    assert c.connected.is_set(), c.connack
    [granted] = c.subscribe(SHARED)
    assert not granted.is_failure, granted
    yield c
    c.close()


def station(broker, sid: str, protocol: int = mqtt.MQTTv311, **kw):
    kw.setdefault("client_id", f"civicair-bridge-{sid}")
    c = connect(broker, sid, PASSWORDS[sid], protocol=protocol, **kw)
    assert c.connected.is_set(), c.connack
    return c


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqtt311", "mqtt5"])
def test_anonymous_client_is_refused(broker, protocol):
    c = connect(broker, None, None, client_id="anon", protocol=protocol)
    try:
        assert not c.connected.is_set()
        assert c.connack is not None and c.connack.is_failure
        assert "authori" in str(c.connack).lower()
    finally:
        c.close()


def test_wrong_password_is_refused(broker):
    c = connect(broker, "st-1", "not-the-password", client_id="x")
    try:
        assert not c.connected.is_set() and c.connack.is_failure
    finally:
        c.close()


def test_station_publishes_its_own_readings_and_ingest_receives_them_through_share(broker, ingest):
    st = station(broker, "st-1")
    try:
        st.publish("civicair/v1/st-1/readings", b'{"own": 1}')
        wait_until(lambda: b'{"own": 1}' in ingest.payloads(), timeout=10, message="the ingest to receive")
        assert ingest.messages[0].topic == "civicair/v1/st-1/readings"
    finally:
        st.close()


def test_station_cannot_publish_to_another_stations_topic_mqtt311(broker, ingest):
    """MQTT 3.1.1 has no way to refuse a publish: Mosquitto acknowledges and drops it."""
    st = station(broker, "st-1")
    try:
        st.publish("civicair/v1/st-2/readings", b"forged")
        st.publish("civicair/v1/st-1/readings", b"marker")  # same connection, so it arrives after
        wait_until(lambda: b"marker" in ingest.payloads(), timeout=10, message="the marker")
        assert b"forged" not in ingest.payloads()
    finally:
        st.close()


@pytest.mark.parametrize("topic", [
    "civicair/v1/st-2/readings",
    "civicair/v1/st-2/status",
    "civicair/v1/_deadletter",
    "civicair/v1/st-10/readings",  # a prefix of the own id is not the own id
    "civicair/v2/st-1/readings",
    "elsewhere",
    "civicair/v1/st-1/junk/1",  # its own id, but not a topic of the contract (retained spam)
    "civicair/v1/st-1",
])
def test_station_publish_outside_its_own_topics_is_not_authorized_mqtt5(broker, ingest, topic):
    st = station(broker, "st-1", protocol=mqtt.MQTTv5)
    try:
        refused = st.puback(st.publish(topic, b"forged"))
        allowed = st.puback(st.publish("civicair/v1/st-1/status", b"online"))
        assert refused.value == NOT_AUTHORIZED, refused
        assert not allowed.is_failure, allowed
    finally:
        st.close()


def test_station_cannot_read_other_stations_readings(broker, ingest):
    """Mosquitto 2 grants the subscription, then checks read access on every message."""
    spy = station(broker, "st-1", protocol=mqtt.MQTTv5)
    other = station(broker, "st-2")
    try:
        spy.subscribe("civicair/v1/+/readings")
        other.publish("civicair/v1/st-2/readings", b"private")
        # Delivered to the ingest means routed to every subscriber, the spy included.
        wait_until(lambda: b"private" in ingest.payloads(), timeout=10, message="the ingest to receive")
        assert spy.payloads() == []
    finally:
        spy.close()
        other.close()


def test_ingest_may_publish_dead_letters(broker, ingest):
    reason = ingest.puback(ingest.publish("civicair/v1/_deadletter", b"{}"))
    assert not reason.is_failure, reason


def test_station_reads_only_its_own_stored_confirmations(broker, ingest):
    """The ingest may publish every station's confirmations; each station receives only its own,
    whatever it subscribes to."""
    own = station(broker, "st-1", protocol=mqtt.MQTTv5)
    spy = station(broker, "st-2", client_id="spy", protocol=mqtt.MQTTv5)
    try:
        own.subscribe("civicair/v1/st-1/stored")
        spy.subscribe("civicair/v1/+/stored")
        spy.subscribe("civicair/v1/st-1/stored")
        for sid in ("st-1", "st-2"):
            reason = ingest.puback(ingest.publish(f"civicair/v1/{sid}/stored", f"for {sid}".encode()))
            assert not reason.is_failure, reason
        wait_until(lambda: b"for st-1" in own.payloads(), timeout=10, message="st-1's own confirmation")
        wait_until(lambda: b"for st-2" in spy.payloads(), timeout=10, message="st-2's own confirmation")
        assert own.payloads() == [b"for st-1"]
        assert spy.payloads() == [b"for st-2"]  # its own, once: never st-1's
    finally:
        own.close()
        spy.close()


def test_the_second_ingest_account_shares_the_readings_and_may_confirm(broker, ingest):
    """docker-compose.yml runs two ingests on one $share group, each with its own account."""
    second_name = f"{INGEST_ACCOUNT}-2"
    second = connect(broker, second_name, PASSWORDS[second_name], client_id=second_name,
                     protocol=mqtt.MQTTv5, receive_maximum=10000, clean=False)
    own = station(broker, "st-1", protocol=mqtt.MQTTv5)
    try:
        assert second.connected.is_set(), second.connack
        [granted] = second.subscribe(SHARED)
        assert not granted.is_failure, granted
        own.subscribe("civicair/v1/st-1/stored")
        for i in range(20):
            own.publish("civicair/v1/st-1/readings", f"r{i}".encode())
        wait_until(lambda: len(ingest.payloads()) + len(second.payloads()) == 20, timeout=10,
                   message="every reading to one of the two")
        assert sorted(ingest.payloads() + second.payloads()) == sorted(f"r{i}".encode() for i in range(20))
        assert ingest.payloads() and second.payloads()  # each took a share
        reason = second.puback(second.publish("civicair/v1/st-1/stored", b"from the second"))
        assert not reason.is_failure, reason
        wait_until(lambda: b"from the second" in own.payloads(), timeout=10, message="the confirmation")
    finally:
        second.close()
        own.close()


@pytest.mark.parametrize("topic", ["civicair/v1/st-1/stored", "civicair/v1/st-2/stored"])
def test_no_station_may_publish_a_stored_confirmation(broker, ingest, topic):
    listener = station(broker, "st-1", client_id="listener", protocol=mqtt.MQTTv5)
    try:
        listener.subscribe("civicair/v1/st-1/stored")
        # One account, one connection at a time (use_username_as_clientid): MQTT 5 first ...
        forger = station(broker, "st-2", protocol=mqtt.MQTTv5)
        refused = forger.puback(forger.publish(topic, b"forged"))
        forger.close()
        assert refused.value == NOT_AUTHORIZED, refused
        old_style = station(broker, "st-2")  # ... then MQTT 3.1.1: acknowledged, dropped silently
        old_style.publish(topic, b"forged 3.1.1")
        old_style.close()
        ingest.puback(ingest.publish("civicair/v1/st-1/stored", b"genuine"))
        wait_until(lambda: b"genuine" in listener.payloads(), timeout=10, message="the genuine one")
        assert listener.payloads() == [b"genuine"]
    finally:
        listener.close()


def test_revoked_station_is_refused_after_the_broker_reloads(broker, passwd):
    connected = station(broker, "st-2")
    assert revoke_station("st-2", passwd)
    # The broker has not re-read the file yet: revocation takes effect with the SIGHUP.
    before = station(broker, "st-2", client_id="second-connection")
    before.close()
    broker.reload()

    def refused():
        c = connect(broker, "st-2", PASSWORDS["st-2"], client_id="civicair-bridge-st-2")
        c.close()
        return c.connack is not None and c.connack.is_failure

    wait_until(refused, timeout=10, message="the revoked station to be refused")
    # Mosquitto 2 also closes the revoked station's open connection on reload.
    wait_until(lambda: connected.disconnects, timeout=10, message="the open connection to be closed")
    connected.close()
    still = station(broker, "st-1")  # the others are untouched
    still.close()


def test_station_cannot_take_over_the_ingest_session_by_its_client_id(broker, ingest):
    """Without use_username_as_clientid, Mosquitto would drop the ingest in favour of st-1."""
    intruder = connect(broker, "st-1", PASSWORDS["st-1"], client_id=INGEST_ACCOUNT)
    try:
        st = station(broker, "st-2")
        st.publish("civicair/v1/st-2/readings", b"after")
        wait_until(lambda: b"after" in ingest.payloads(), timeout=10, message="the ingest to stay connected")
        assert ingest.disconnects == []
        st.close()
    finally:
        intruder.close()


def test_ingest_receive_maximum_bounds_its_in_flight_window_not_the_broker_limit(broker):
    """The sizing argument of mosquitto.conf: an MQTT 5 client's Receive Maximum governs.

    The ingest acknowledges nothing here (manual ack, as the real one does before its
    InfluxDB write); it still receives five times the broker's max_inflight_messages.
    """
    limit = int(shipped_options()["max_inflight_messages"][0])
    count = limit * 5
    ingest = connect(broker, INGEST_ACCOUNT, PASSWORDS[INGEST_ACCOUNT], client_id=INGEST_ACCOUNT,
                     protocol=mqtt.MQTTv5, receive_maximum=10000, manual_ack=True)
    st = station(broker, "st-1")
    try:
        ingest.subscribe(SHARED)
        for i in range(count):
            st.client.publish("civicair/v1/st-1/readings", b"%d" % i, qos=1)
        wait_until(lambda: len(ingest.payloads()) >= count, timeout=20,
                   message=f"{count} unacknowledged messages in flight to the ingest")
    finally:
        st.close()
        ingest.close()


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None,
                    reason="mosquitto_sub (package mosquitto-clients) absent")
def test_compose_healthcheck_passes_on_a_secured_broker_and_fails_on_a_dead_one(broker):
    """docker-compose.yml's probe: exit 5 (CONNACK 'not authorised') means up and refusing anonymous."""
    probe = ("mosquitto_sub -h 127.0.0.1 -p {port} -t '$SYS/broker/uptime' -C 1 -W 5 >/dev/null 2>&1; "
             "[ $? -eq 5 ]")
    assert subprocess.run(["sh", "-c", probe.format(port=broker.port)], timeout=20).returncode == 0
    port = broker.port
    broker.stop()
    assert subprocess.run(["sh", "-c", probe.format(port=port)], timeout=20).returncode != 0
