"""The bridge process logic on a real broker: two channels, duty cycle, meta, warm-up."""

from __future__ import annotations

import threading
import time

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge import contract
from firmware_bridge.app import Bridge
from firmware_bridge.config import BridgeConfig, SensorConfig
from firmware_bridge.publisher import MqttSettings
from firmware_bridge.simulator import PtySimulator
from tests.conftest import wait_until


class Collector:
    def __init__(self, broker, station):
        self.readings, self.meta, self.status = [], [], []
        self.lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2)
        c.on_message = self._on_message
        c.connect(broker.host, broker.port)
        c.subscribe(f"civicair/v1/{station}/#", qos=1)
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, msg):
        with self.lock:
            kind = msg.topic.rsplit("/", 1)[1]
            if kind == "readings":
                doc = orjson.loads(msg.payload)
                self.readings.extend(doc if isinstance(doc, list) else [doc])
            elif kind == "meta":
                self.meta.append(orjson.loads(msg.payload))
            else:
                self.status.append(msg.payload.decode())

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def sims(tmp_path):
    made = []

    def make(values, **kw):
        sim = PtySimulator("pms5003", rate_hz=10, values=values, link=tmp_path / f"tty{len(made)}", **kw)
        sim.start()
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


def bridge_for(tmp_path, broker, sensors, **kw) -> Bridge:
    cfg = BridgeConfig(station="duo", sensors=tuple(sensors), window_s=1, warmup_s=0, clock="trusted",
                       spool_path=str(tmp_path / "spool.sqlite3"),
                       mqtt=MqttSettings(host=broker.host, port=broker.port), **kw)
    return Bridge(cfg)


def test_two_sensors_publish_as_channels_a_and_b(tmp_path, mosquitto, sims):
    a = sims({"pm25_atm": 10, "n0_3": 500})
    b = sims({"pm25_atm": 20, "n0_3": 800})
    col = Collector(mosquitto, "duo")
    bridge = bridge_for(tmp_path, mosquitto, [SensorConfig(a.link, "pms5003", "a"),
                                              SensorConfig(b.link, "pms5003", "b")])
    bridge.start()
    try:
        wait_until(lambda: {r["channel"] for r in col.readings} == {"a", "b"}, message="both channels")
    finally:
        bridge.stop()
        col.close()
    for r in col.readings:
        contract.validate_reading(r, "duo")
        if r["n"]:
            assert r["pm25_atm"] == {"a": 10, "b": 20}[r["channel"]]
    assert col.status[0] == "online" and col.status[-1] == "offline"
    assert col.meta[0]["sensors"] == {"a": "pms5003", "b": "pms5003"}


@pytest.mark.slow  # sleeps through duty periods: about 10 s
def test_duty_cycle_sleeps_the_sensor_between_windows_and_counts_laser_hours(tmp_path, mosquitto, sims):
    sim = sims({"pm25_atm": 7, "n0_3": 300})
    col = Collector(mosquitto, "duo")
    bridge = bridge_for(tmp_path, mosquitto, [SensorConfig(sim.link, "pms5003", "a")], duty_period_s=3)
    slept = []
    started = time.monotonic()
    bridge.start()
    try:
        def sensor_slept_and_published():
            if not sim.behaviour.streaming:
                slept.append(True)
            return slept and len([r for r in col.readings if r["n"]]) >= 3
        wait_until(sensor_slept_and_published, timeout=40, interval=0.05, message="3 duty-cycle windows")
    finally:
        bridge.stop()
        ran_s = time.monotonic() - started
        col.close()
    measured = [r for r in col.readings if r["n"]]
    assert all(r["ts"] % 3 == 0 for r in measured), [r["ts"] for r in measured]  # one window per period
    assert all(r["pm25_atm"] == 7 for r in measured)
    assert slept, "the simulated sensor never received a sleep command"
    # Laser-on time counts only while the sensor is awake: one 1 s window (plus at most a
    # loop turn each side) in every 3 s period, so well under the time the bridge ran even
    # on a slow machine; counting the sleep too would come close to all of it.
    laser_s = bridge.loops[0].laser_s
    assert 0 < laser_s < 0.75 * ran_s, (laser_s, ran_s)
    # What was counted up to the stop is persisted: the next boot carries on from it.
    reopened = bridge_for(tmp_path, mosquitto, [SensorConfig(sim.link, "pms5003", "a")])
    try:
        assert reopened.loops[0].laser_s == int(laser_s)
    finally:
        reopened.spool.close()


def test_frames_with_all_zero_counts_right_after_wake_are_discarded(tmp_path, mosquitto, sims):
    sim = sims({"pm25_atm": 0, "n0_3": 0, "n0_5": 0})  # fan not spinning yet
    col = Collector(mosquitto, "duo")
    bridge = bridge_for(tmp_path, mosquitto, [SensorConfig(sim.link, "pms5003", "a")])
    bridge.start()
    try:
        wait_until(lambda: bridge.loops[0].discarded_zero >= 10, message="zero frames discarded")
        sim.fixed = {"pm25_atm": 4, "n0_3": 200}
        wait_until(lambda: any(r["n"] and r.get("pm25_atm") == 4 for r in col.readings),
                   message="readings once the fan is up")
    finally:
        bridge.stop()
        col.close()
    assert not any(r["n"] and r.get("pm25_atm") == 0 for r in col.readings)


@pytest.mark.parametrize("model", ["sds011", "sps30"])
def test_bridge_reads_sds011_and_sps30_through_their_protocols(tmp_path, mosquitto, model):
    sim = PtySimulator(model, rate_hz=2, values={"pm25_atm": 8.5, "pm10_atm": 12.0},
                       link=tmp_path / "tty")
    sim.start()
    col = Collector(mosquitto, "duo")
    bridge = bridge_for(tmp_path, mosquitto, [SensorConfig(str(tmp_path / "tty"), model, "a")])
    bridge.start()
    try:
        wait_until(lambda: any(r["n"] for r in col.readings), message=f"{model} readings")
    finally:
        bridge.stop()
        col.close()
        sim.close()
    r = next(r for r in col.readings if r["n"])
    assert r["sensor"] == model and r["pm25_atm"] == pytest.approx(8.5, abs=0.05)
    assert r["pm10_atm"] == pytest.approx(12.0, abs=0.05)


def test_sds011_flash_settings_written_only_when_they_differ(tmp_path, mosquitto):
    from firmware_bridge.sensors import sds011

    sim = PtySimulator("sds011", rate_hz=2, values={"pm25_atm": 5.0, "pm10_atm": 7.0},
                       link=tmp_path / "tty")
    sim.behaviour.report_mode = sds011.MODE_QUERY  # left in query mode: it would stay silent
    sim.start()
    col = Collector(mosquitto, "duo")
    try:
        for run in range(2):  # a second start must not write flash again
            bridge = bridge_for(tmp_path, mosquitto, [SensorConfig(str(tmp_path / "tty"), "sds011", "a")])
            bridge.start()
            try:
                seen = len(col.readings)
                wait_until(lambda seen=seen: any(r["n"] for r in col.readings[seen:]),
                           message=f"SDS011 readings, run {run}")
            finally:
                bridge.stop()
            assert sim.behaviour.report_mode == sds011.MODE_ACTIVE
            assert sim.behaviour.flash_writes == 1
    finally:
        col.close()
        sim.close()


def test_sps30_status_register_is_polled_on_a_real_port(tmp_path, mosquitto):
    """The bridge reads the SPS30's Device Status Register through a real pty: a laser
    failure reaches the readings' ``status`` (issue 12). The port's reads wait out their
    timeout, so a value poll is due at every step; the status poll must still get its turn."""
    from firmware_bridge.sensors.sps30 import StatusFlag

    sim = PtySimulator("sps30", rate_hz=1, values={"pm25_atm": 8.5, "pm10_atm": 12.0},
                       link=tmp_path / "tty")
    sim.behaviour.faults = int(StatusFlag.LASER_FAILURE)
    sim.start()
    col = Collector(mosquitto, "duo")
    bridge = bridge_for(tmp_path, mosquitto, [SensorConfig(str(tmp_path / "tty"), "sps30", "a")])
    bridge.start()
    try:
        wait_until(lambda: any(r.get("status") for r in col.readings), timeout=20,
                   message="a reading with the SPS30's status")
    finally:
        bridge.stop()
        col.close()
        sim.close()
    r = next(r for r in col.readings if r.get("status"))
    assert r["status"] == 1 << 5 and r["pm25_atm"] == pytest.approx(8.5, abs=0.05)
