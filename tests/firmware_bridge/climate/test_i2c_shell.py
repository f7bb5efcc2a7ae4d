"""The smbus2 shell: plans become i2c_rdwr transactions and waits, on a simulated bus."""

from __future__ import annotations

import errno

import pytest

from firmware_bridge.climate.base import Transfer, Wait
from firmware_bridge.climate.i2c import I2cCompanion, run_plan
from firmware_bridge.climate.simulated import FakeClock, SimBme280, SimulatedBus


def test_a_write_read_transfer_is_one_transaction_and_waits_sleep():
    clock = FakeClock()
    bus = SimulatedBus({0x76: SimBme280()}, clock=clock)
    slept = []
    plan = (Transfer(b"\xd0", 1), Wait(0.25), Transfer(b"\x88", 2), Transfer(b"\xf2\x01"))
    replies = run_plan(bus, 0x76, plan, sleep=slept.append)
    assert replies == [b"\x60", (27504).to_bytes(2, "little")]
    assert bus.transactions == 3 and slept == [0.25]


def test_an_absent_device_is_an_oserror_from_the_bus():
    bus = SimulatedBus()
    with pytest.raises(OSError) as info:
        run_plan(bus, 0x77, (Transfer(b"\xd0", 1),))
    assert info.value.errno == errno.EREMOTEIO


def test_a_companion_without_a_device_counts_and_never_raises():
    clock = FakeClock()
    c = I2cCompanion("bme280", SimulatedBus(clock=clock), 0x76, sleep=clock.sleep)
    for _ in range(3):
        assert c.read() is None
    assert c.errors == {"ClimateError": 3} and "no answer" in c.last_error


def test_transfers_must_do_something():
    with pytest.raises(ValueError):
        Transfer()
    with pytest.raises(ValueError):
        Transfer(b"\x00", -1)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unsupported climate kind"):
        I2cCompanion("dht22", SimulatedBus(), 0x40)
