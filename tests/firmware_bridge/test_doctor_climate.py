"""``bridge doctor`` on companions: a fake /dev and IIO tree, simulated I²C parts."""

from __future__ import annotations

import io
import re

from firmware_bridge import config, doctor
from firmware_bridge.climate.simulated import (
    FakeClock,
    FlakyReader,
    SimBme280,
    SimHtu21d,
    SimSht3x,
    SimSht4x,
    SimulatedBus,
    write_iio_device,
)

BASE = 'station = "doc-1"\n[[sensor]]\nport = "/dev/serial0"\nmodel = "pms5003"\n'


def fake_env(tmp_path, buses, read_text=None):
    """``/dev/i2c-N`` nodes for ``buses`` ({N: SimulatedBus}) and an IIO root, all in tmp."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for number in buses:
        (dev / f"i2c-{number}").write_text("")
    iio_root = tmp_path / "iio"
    iio_root.mkdir()
    clock = FakeClock()
    for bus in buses.values():
        bus.clock = clock
        for device in bus.devices.values():
            device.clock = clock
    extra = {"read_text": read_text} if read_text else {}
    return doctor.ClimateEnv(dev_root=dev, iio_root=iio_root, opener=lambda n: buses[n], sleep=clock.sleep, **extra)


def report(checks):
    out = io.StringIO()
    for check in checks:
        print(check.line(), file=out)
    return out.getvalue()


def test_scan_finds_every_part_and_prints_tables_that_load(tmp_path):
    bus = SimulatedBus({0x76: SimBme280(temp=22.0, rh=40.0), 0x77: SimBme280(chip_id=0x58),
                        0x44: SimSht4x(temp=19.5, rh=61.0), 0x45: SimSht3x(temp=18.0, rh=70.0),
                        0x40: SimHtu21d(model="si7021")})
    env = fake_env(tmp_path, {1: bus})
    write_iio_device(env.iio_root, 0, "dht11", in_temp_input=17300, in_humidityrelative_input=82100)
    write_iio_device(env.iio_root, 1, "tmp117", in_temp_raw=2000, in_temp_scale=7.8125)  # no humidity
    checks = doctor.check_climate(config.load_text(BASE, env={}), env)
    text = report(checks)
    assert all(c.ok for c in checks), text
    assert "found bme280 at 0x76 on /dev/i2c-1: 22.0 °C, 40.0 %RH, 1013.2 hPa" in text
    assert "found a BMP280 at 0x77 on /dev/i2c-1: it has no humidity sensor" in text
    assert "found sht4x at 0x44 on /dev/i2c-1: 19.5 °C, 61.0 %RH" in text
    assert "found sht3x at 0x45 on /dev/i2c-1: 18.0 °C, 70.0 %RH" in text
    assert "found si7021 at 0x40" in text
    assert 'IIO iio:device0 "dht11": 17.3 °C, 82.1 %RH' in text and "set model to yours" in text
    assert "tmp117" not in text
    # The printed tables are valid config, and name what was found.
    tables = re.findall(r"^ {7}(\[\[climate\]\](?:\n {7}\w+ = .+)+)", text, flags=re.M)
    pasted = "\n".join(re.sub(r"^ {7}", "", t, flags=re.M) for t in tables)
    cfg = config.load_text(BASE + pasted, env={})
    assert [(c.kind, c.address or c.device) for c in cfg.climate] == [
        ("bme280", 0x76), ("sht4x", 0x44), ("sht3x", 0x45), ("si7021", 0x40), ("iio", "dht11")]


def test_scan_without_i2c_says_how_to_enable_it(tmp_path):
    env = fake_env(tmp_path, {})
    (check,) = doctor.check_climate(config.load_text(BASE, env={}), env)
    assert check.ok and "no I²C bus; to enable it: sudo raspi-config nonint do_i2c 0" in check.detail
    assert "humidity-uncorrected" in check.detail


def test_scan_of_an_empty_bus_names_it(tmp_path):
    env = fake_env(tmp_path, {1: SimulatedBus()})
    (check,) = doctor.check_climate(config.load_text(BASE, env={}), env)
    assert check.ok and "nothing answers on /dev/i2c-1" in check.detail


def test_configured_companions_are_read_once(tmp_path):
    bus = SimulatedBus({0x44: SimSht3x(temp=21.0, rh=50.0)})
    env = fake_env(tmp_path, {1: bus}, read_text=FlakyReader([True, False]))
    write_iio_device(env.iio_root, 0, "dht11", in_temp_input=17300, in_humidityrelative_input=82100)
    cfg = config.load_text(BASE + '[[climate]]\nkind = "sht3x"\n[[climate]]\nkind = "iio"\ndevice = "dht11"\n'
                           'model = "dht22"\n', env={})
    checks = doctor.check_climate(cfg, env)
    text = report(checks)
    assert [c.ok for c in checks] == [True, True], text
    assert "[PASS] climate sht3x: 0x44 on " in text and "21.0 °C, 50.0 %RH" in text
    assert "[PASS] climate dht11: dht22: 17.3 °C, 82.1 %RH after 1 retries" in text


def test_configured_companion_failures_say_what_to_fix(tmp_path):
    bus = SimulatedBus({0x44: SimSht4x(), 0x76: SimBme280(chip_id=0x58)})
    env = fake_env(tmp_path, {1: bus})
    cfg = config.load_text(BASE + """
[[climate]]
kind = "sht3x"
[[climate]]
kind = "bme280"
[[climate]]
kind = "htu21d"
bus = 4
[[climate]]
kind = "iio"
device = "dht11"
""", env={})
    text = report(doctor.check_climate(cfg, env))
    assert "[FAIL] climate sht3x: 0x44 on" in text and "no answer" in text and "i2cdetect -y 1" in text
    assert "[FAIL] climate bme280:" in text and "BMP280" in text and "no humidity sensor" in text
    assert "[FAIL] climate htu21d:" in text and "i2c-4 does not exist: I²C is off" in text
    assert "fix: sudo raspi-config nonint do_i2c 0" in text
    assert "[FAIL] climate dht11: no reading: no IIO device 'dht11'" in text and "dtoverlay=dht11,gpiopin=4" in text


def test_a_simulated_companion_is_read_as_the_bridge_reads_it(tmp_path):
    """``simulate = true`` (the local stack's stations): the bridge reads a simulated part,
    so doctor does too, instead of failing on a /dev/i2c-1 the bridge never opens."""
    env = fake_env(tmp_path, {})  # no I²C bus at all
    cfg = config.load_text(BASE + '[[climate]]\nkind = "sht3x"\nmodel = "sht31"\nsimulate = true\n', env={})
    (check,) = doctor.check_climate(cfg, env)
    assert check.ok and check.name == "climate sht3x", check
    assert re.search(r"simulated sht31 .*: -?\d+\.\d °C, \d+\.\d %RH", check.detail), check.detail
