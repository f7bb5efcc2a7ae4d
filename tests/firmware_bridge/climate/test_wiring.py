"""Companions wired into the bridge: the pure attach rule, the reader thread's shell,
and a bridge on a real broker whose readings carry a simulated companion's window mean."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from civicair.schema import contract
from firmware_bridge.app import Bridge
from firmware_bridge.climate.reader import CompanionReader
from firmware_bridge.climate.simulated import SimBme280, SimulatedBus, SimulatedWeather
from firmware_bridge.climate.window import CompanionWindow, attach
from firmware_bridge.config import BridgeConfig, ClimateConfig, SensorConfig, load_text
from firmware_bridge.errors import ConfigError
from firmware_bridge.publisher import MqttSettings
from firmware_bridge.simulator import PtySimulator
from tests.conftest import wait_until
from tests.firmware_bridge.test_bridge_app import Collector

READING = {"v": 1, "station": "lab-1", "sensor": "pms5003t", "channel": "a", "ts": 1_800_000_060,
           "window": 60, "n": 26, "seq": 0, "boot": 1, "synced": True, "pm25_atm": 12.0,
           "rh": 41.0, "temp": 27.5, "min": {"pm25_atm": 10.0, "rh": 40.0}, "max": {"rh": 42.0}}


def window(source: str, rh: float | None, temp: float | None) -> CompanionWindow:
    return CompanionWindow(source=source, rh=rh, temp=temp, n=30 if rh or temp else 0, errors=0)


def test_companion_wins_over_the_pm_sensors_own_rh_and_temp():
    out = attach(dict(READING), [window("bme280", 63.25, 18.5)])
    assert (out["rh"], out["temp"], out["climate"]) == (63.25, 18.5, "bme280")
    # The PMS5003T's extremes describe another instrument: dropped, the PM ones kept.
    assert out["min"] == {"pm25_atm": 10.0} and "max" not in out
    assert contract.validate_reading(out, "lab-1") is out


def test_without_a_companion_value_the_reading_is_what_older_ingests_accept():
    plain = {k: v for k, v in READING.items() if k not in ("rh", "temp", "min", "max")}
    assert attach(dict(plain), []) == plain
    assert attach(dict(plain), [window("sht3x", None, None)]) == plain  # no read in the window
    assert "climate" not in attach(dict(READING), [window("sht3x", None, None)])


def test_first_companion_with_a_value_is_used_and_a_missing_value_stays_the_sensors():
    out = attach(dict(READING), [window("sht3x", None, None), window("dht22", None, 9.0)])
    assert (out["rh"], out["temp"], out["climate"]) == (41.0, 9.0, "dht22")
    assert out["min"] == {"pm25_atm": 10.0, "rh": 40.0} and out["max"] == {"rh": 42.0}


@pytest.mark.parametrize("kind", ["bme280", "sht3x", "sht4x", "htu21d", "si7021"])
def test_reader_reads_a_simulated_part_into_its_window(kind):
    clock = iter(range(1000, 2000, 2))
    reader = CompanionReader(ClimateConfig(kind=kind, bus=1, address=_address(kind), simulate=True),
                             threading.Event(), clock=lambda: float(next(clock)))
    for _ in range(5):
        sample = reader.read_once()
        assert sample is not None
        reader.accumulator.add(reader.clock(), sample)
    w = reader.window(1000, 1100)
    assert w.n == 5 and w.errors == 0 and w.source == kind
    temp, rh = SimulatedWeather(kind).at(1000)
    assert w.rh == pytest.approx(rh, abs=1.0) and w.temp == pytest.approx(temp, abs=1.0)
    assert reader.stats() == {"samples": 5, "errors": {}}


def _address(kind: str) -> int:
    return {"bme280": 0x76, "sht3x": 0x44, "sht4x": 0x44}.get(kind, 0x40)


def test_a_missing_part_is_counted_and_never_raised():
    reader = CompanionReader(ClimateConfig(kind="sht3x", bus=99, address=0x44), threading.Event())
    assert reader.read_once() is None  # /dev/i2c-99 does not exist here
    assert reader.read_once() is None
    assert reader.stats()["samples"] == 0 and sum(reader.stats()["errors"].values()) == 2


def test_simulate_is_an_i2c_option_only():
    cfg = load_text('station = "s"\n[[sensor]]\nport = "/dev/null"\n'
                    '[[climate]]\nkind = "sht3x"\nmodel = "sht31"\nsimulate = true\n')
    assert cfg.climate[0].simulate and cfg.climate[0].source == "sht31"
    with pytest.raises(ConfigError, match="simulate is for I²C kinds"):
        load_text('station = "s"\n[[sensor]]\nport = "/dev/null"\n'
                  '[[climate]]\nkind = "iio"\ndevice = "dht11"\nsimulate = true\n')
    with pytest.raises(ConfigError, match="simulate must be true or false"):
        load_text('station = "s"\n[[sensor]]\nport = "/dev/null"\n[[climate]]\nkind = "bme280"\nsimulate = 1\n')


def test_bridge_readings_carry_the_companions_window_mean(tmp_path: Path, mosquitto):
    sim = PtySimulator("pms5003", rate_hz=10, values={"pm25_atm": 10, "pm25_cf1": 10, "n0_3": 500},
                       link=tmp_path / "tty0")
    sim.start()
    col = Collector(mosquitto, "humid")
    cfg = BridgeConfig(station="humid", sensors=(SensorConfig(str(sim.link), "pms5003", "a"),),
                       window_s=2, warmup_s=0, clock="trusted", spool_path=str(tmp_path / "spool.sqlite3"),
                       mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port),
                       climate=(ClimateConfig(kind="bme280", bus=1, address=0x76, interval=1, simulate=True),))
    bridge = Bridge(cfg)
    bridge.start()
    try:
        wait_until(lambda: any("climate" in r for r in col.readings), timeout=20, message="a reading with rh")
    finally:
        bridge.stop()
        sim.close()
        col.close()
    with_rh = [r for r in col.readings if "climate" in r]
    for r in with_rh:
        assert r["climate"] == "bme280" and 55 <= r["rh"] <= 90 and 5 <= r["temp"] <= 20
        contract.validate_reading(r, "humid")
    assert any("climate" in m for m in col.meta)  # the meta carries the companion's counters
    stats = bridge.meta()["climate"]["bme280"]
    assert stats["samples"] >= 1 and stats["errors"] == {}


class _CountingBus(SimulatedBus):
    opened: list[_CountingBus] = []

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.closed = False
        _CountingBus.opened.append(self)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("device", [None, "bmp280"], ids=["nothing answers", "a BMP280 answers"])
def test_a_part_that_fails_to_start_does_not_leak_its_bus(monkeypatch, device):
    """Each retry opens /dev/i2c-N again (smbus2 holds a file descriptor and has no __del__):
    a bus whose part did not start is closed, or a bridge without its companion would run
    out of file descriptors within a day of one retry a minute."""
    from firmware_bridge.climate import i2c

    devices = {0x76: SimBme280(chip_id=0x58)} if device else {}
    _CountingBus.opened = []
    monkeypatch.setattr(i2c, "open_bus", lambda number: _CountingBus(dict(devices)))
    reader = CompanionReader(ClimateConfig(kind="bme280", bus=1, address=0x76), threading.Event())
    for _ in range(3):
        assert reader.read_once() is None
    assert len(_CountingBus.opened) == 3 and all(bus.closed for bus in _CountingBus.opened)
    assert sum(reader.stats()["errors"].values()) == 3
