"""Operations: /metrics in the Prometheus text format, /health, and what the broker does
with our Receive Maximum (the bound that keeps the ingest's memory small)."""

from __future__ import annotations

import re
import time

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from civicair.schema import contract
from civicair.schema.qc import Flag
from civicair.services import Mosquitto, free_port
from ingest.metrics import Counter, Histogram, Registry, parse
from tests.conftest import wait_until
from tests.ingest.conftest import messages_for, reading, stored_count

SAMPLE = re.compile(r'^[a-z_:][a-z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$')


def test_metrics_render_in_the_prometheus_text_format():
    r = Registry()
    c = r.add(Counter("x_total", "Things.", labelnames=("reason",)))
    c.inc(2, 'say "hi"\n')
    h = r.add(Histogram("y_seconds", "Durations.", (0.1, 1.0)))
    for v in (0.05, 0.5, 0.5, 7):
        h.observe(v)
    text = r.render().decode()
    assert text == (
        "# HELP x_total Things.\n# TYPE x_total counter\n"
        'x_total{reason="say \\"hi\\"\\n"} 2\n'
        "# HELP y_seconds Durations.\n# TYPE y_seconds histogram\n"
        'y_seconds_bucket{le="0.1"} 1\ny_seconds_bucket{le="1.0"} 3\ny_seconds_bucket{le="+Inf"} 4\n'
        "y_seconds_sum 8.05\ny_seconds_count 4\n")


def test_running_ingest_serves_metrics_and_health(influx, spawn_ingest, publisher):
    ingest = spawn_ingest()
    stations = ["ops-1", "ops-2"]
    publisher.publish_all(messages_for(stations, 50))
    # One reading with its clock not synchronised: the CLOCK_UNSYNCED bit is counted.
    unsynced = {**reading("ops-1", 50), "synced": False}
    publisher.publish(contract.readings_topic("ops-1"), orjson.dumps(unsynced))
    publisher.settle()
    wait_until(lambda: ingest.metric("civicair_ingest_written_readings_total") >= 101, timeout=30,
               message="readings written")

    status, body = ingest._get("/metrics")
    text = body.decode()
    assert status == 200
    for line in text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line
    m = parse(text)
    assert m["civicair_ingest_received_messages_total"] == 101
    assert m["civicair_ingest_received_readings_total"] == 101
    assert m["civicair_ingest_acked_messages_total"] == 101
    assert m["civicair_ingest_batch_readings_count"] >= 1
    assert m['civicair_ingest_batch_readings_bucket{le="+Inf"}'] == m["civicair_ingest_batch_readings_count"]
    assert m["civicair_ingest_write_seconds_count"] >= 1
    assert m["civicair_ingest_influxdb_up"] == 1 and m["civicair_ingest_mqtt_connected"] == 1
    assert m["civicair_ingest_consumer_lag_seconds"] > 0  # the readings are from 2025
    assert m["civicair_ingest_buffered_messages"] == 0
    assert m["civicair_ingest_receive_maximum"] == 10000
    for flag in Flag:
        assert f'civicair_ingest_flagged_readings_total{{flag="{flag.name.lower()}"}}' in m
    assert m['civicair_ingest_flagged_readings_total{flag="clock_unsynced"}'] == 1
    for cls in ("json", "contract", "topic", "station_mismatch", "influxdb"):
        assert m[f'civicair_ingest_deadlettered_total{{reason="{cls}"}}'] == 0

    status, health = ingest.health()
    assert status == 200 and health["status"] == "ok" and health["reasons"] == []
    assert ingest._get("/nothing")[0] == 404
    assert stored_count(influx) == 101


def test_health_is_503_with_a_reason_while_the_broker_is_unreachable(spawn_ingest):
    ingest = spawn_ingest(connected=False, mqtt_port=free_port())
    status, body = ingest.health()
    assert status == 503
    assert body["status"] == "unavailable" and "not connected to the MQTT broker" in body["reasons"]
    assert ingest.alive()  # it keeps trying; it does not exit


def _subscriber(broker: Mosquitto, client_id: str, receive_maximum: int | None) -> tuple[mqtt.Client, list]:
    got: list = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.manual_ack_set(True)  # and never acknowledge
    c.on_message = lambda client, userdata, msg: got.append(msg.mid)
    c.on_connect = lambda client, userdata, flags, rc, props: client.subscribe("bp/#", qos=1)
    props = Properties(PacketTypes.CONNECT)
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    c.connect(broker.host, broker.port, properties=props)
    c.loop_start()
    return c, got


def test_broker_sends_a_silent_subscriber_exactly_its_receive_maximum(tmp_path):
    """What the back-pressure rests on, measured on the broker we ship against: the client's
    Receive Maximum bounds what Mosquitto sends unacknowledged, whatever its own
    max_inflight_messages; without one, max_inflight_messages does."""
    with Mosquitto(tmp_path / "bp", extra_config="max_inflight_messages 20") as broker:
        small, got_small = _subscriber(broker, "rm-50", 50)
        large, got_large = _subscriber(broker, "rm-300", 300)  # above the broker's 20
        plain, got_plain = _subscriber(broker, "no-rm", None)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        time.sleep(0.5)
        for i in range(1000):
            pub.publish("bp/x", b"%d" % i, qos=1)
        wait_until(lambda: len(got_large) >= 300, timeout=30, message="the window filled")
        time.sleep(1)  # would anything more come?
        assert (len(got_small), len(got_large), len(got_plain)) == (50, 300, 20)
        for c in (small, large, plain, pub):
            c.disconnect()
            c.loop_stop()


def test_metrics_port_0_turns_the_http_server_off(influxdb):
    from ingest.consumer import Consumer
    from ingest.settings import IngestSettings

    consumer = Consumer(IngestSettings(metrics_port=0, mqtt_port=free_port(), influx_url=influxdb.url,
                                       deadletter_path=str(influxdb.state_dir / "dead.jsonl")))
    consumer.start()
    try:
        assert consumer.metrics_port is None
        ok, body = consumer.health()  # still answers in-process (not connected: no broker there)
        assert not ok and body["reasons"] == ["not connected to the MQTT broker"]
    finally:
        consumer.stop()
