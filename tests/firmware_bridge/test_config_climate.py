"""``[[climate]]`` tables in the bridge config: defaults, kinds, and clear errors."""

from __future__ import annotations

import pytest

from firmware_bridge import config
from firmware_bridge.errors import ConfigError

BASE = """
station = "lab-1"
[[sensor]]
port = "/dev/serial0"
model = "sds011"
"""


def load(extra: str) -> config.BridgeConfig:
    return config.load_text(BASE + extra, env={})


def test_no_climate_table_means_no_companion():
    assert load("").climate == ()


def test_i2c_and_iio_companions_with_defaults():
    cfg = load("""
[[climate]]
kind = "bme280"
[[climate]]
kind = "sht3x"
bus = 3
address = 0x45
interval = 5
[[climate]]
kind = "iio"
device = "dht11"
model = "dht22"
[[climate]]
kind = "si7021"
address = "0x40"
""")
    bme, sht, dht, si = cfg.climate
    assert (bme.kind, bme.bus, bme.address, bme.interval, bme.source) == ("bme280", 1, 0x76, 2.0, "bme280")
    assert (sht.bus, sht.address, sht.interval) == (3, 0x45, 5.0)
    assert (dht.kind, dht.device, dht.bus, dht.address, dht.source) == ("iio", "dht11", None, None, "dht22")
    assert si.address == 0x40


def test_iio_source_defaults_to_the_device_name():
    (c,) = load('[[climate]]\nkind = "iio"\ndevice = "iio:device0"\n').climate
    assert c.source == "iio:device0"


@pytest.mark.parametrize("table, message", [
    ('kind = "dht22"', r"kind 'dht22' unsupported; one of bme280, sht3x, sht4x, htu21d, si7021, iio"),
    ('kind = "bme280"\naddress = 0x44', r"address 0x44 is not one a bme280 can have; use 0x76 or 0x77"),
    ('kind = "sht3x"\naddress = "forty"', r"address 'forty' is not a number \(write it as 0x76\)"),
    ('kind = "sht4x"\nbus = -1', r"bus must be the number N of /dev/i2c-N"),
    ('kind = "sht4x"\nbus = "i2c-1"', r"bus must be the number N"),
    ('kind = "iio"', r"give device = \"iio:deviceN\" or the IIO device's name"),
    ('kind = "iio"\ndevice = "dht11"\naddress = 0x40', r"address is for I²C kinds"),
    ('kind = "htu21d"\ndevice = "dht11"', r"device is for kind = \"iio\""),
    ('kind = "bme280"\nport = "/dev/i2c-1"', r"unknown key\(s\) port"),
    ('kind = "bme280"\ninterval = 0.1', r"interval must be a number of seconds, 1 to 3600"),
    ('kind = "iio"\ndevice = "dht11"\nmodel = "DHT 22"', r"model must be a short lower-case name"),
])
def test_bad_climate_tables_are_refused_with_the_fix(table, message):
    with pytest.raises(ConfigError, match=message):
        load("[[climate]]\n" + table + "\n")


def test_the_error_names_the_table():
    with pytest.raises(ConfigError, match=r"\[\[climate\]\] #2 \(sht3x\)"):
        load('[[climate]]\nkind = "bme280"\n[[climate]]\nkind = "sht3x"\naddress = 0x40\n')


def test_two_tables_for_one_device_are_refused():
    with pytest.raises(ConfigError, match="same device"):
        load('[[climate]]\nkind = "sht3x"\n[[climate]]\nkind = "sht4x"\n')


def test_climate_must_be_an_array_of_tables():
    with pytest.raises(ConfigError, match="must be a table"):
        config.load_text('climate = ["bme280"]\n' + BASE, env={})
    with pytest.raises(ConfigError, match=r"as a \[\[climate\]\] table \(two brackets\)"):
        load('[climate]\nkind = "bme280"\n')
