"""Simulated temperature/humidity companions: register maps and command sets that
answer like the parts do, on a bus object ``smbus2``'s messages drive.

:class:`SimulatedBus` has ``i2c_rdwr(*msgs)`` as ``smbus2.SMBus`` does, and routes
each message to the device at its address; an address without a device, or a read
the device refuses (still converting), fails with ``OSError(EREMOTEIO)``, as the
Linux I²C drivers report a NACK. Conversion times use the bus's ``clock``, so tests
drive them with a fake clock whose ``sleep`` advances it.

:func:`write_iio_device` lays out a fake ``/sys/bus/iio/devices`` tree;
:class:`FlakyReader` reads it failing with EIO on a pattern, as the kernel's DHT11/DHT22
driver does. For tests and (later) the local stack's simulated stations; never on a Pi.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from firmware_bridge.climate import bme280, htu21d, sht3x, sht4x
from firmware_bridge.climate.base import crc8

I2C_M_RD = 0x0001

#: The BMP280 data sheet's worked example (section 3.12) for the temperature and
#: pressure words; humidity words of the size real BME280s carry.
EXAMPLE_CALIBRATION = bme280.Calibration(
    T1=27504, T2=26435, T3=-1000,
    P1=36477, P2=-10685, P3=3024, P4=2855, P5=140, P6=-7, P7=15500, P8=-14600, P9=6000,
    H1=75, H2=362, H3=0, H4=313, H5=50, H6=30,
)


def nack(what: str) -> OSError:
    return OSError(errno.EREMOTEIO, f"{os.strerror(errno.EREMOTEIO)} ({what})")


class Device:
    """One simulated I²C device: ``write(data)``, ``read(n)``; both may raise :func:`nack`."""

    clock: Callable[[], float] = time.monotonic

    def write(self, data: bytes) -> None:
        raise nack("write")

    def read(self, n: int) -> bytes:
        raise nack("read")


class SimulatedBus:
    """An ``smbus2.SMBus`` stand-in: ``i2c_rdwr(*msgs)`` with ``smbus2.i2c_msg`` messages."""

    def __init__(self, devices: dict[int, Device] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.devices = dict(devices or {})
        self.clock = clock
        for device in self.devices.values():
            device.clock = clock
        self.transactions = 0

    def attach(self, address: int, device: Device) -> Device:
        device.clock = self.clock
        self.devices[address] = device
        return device

    def i2c_rdwr(self, *msgs: Any) -> None:
        self.transactions += 1
        for msg in msgs:
            device = self.devices.get(msg.addr)
            if device is None:
                raise nack(f"no device at {msg.addr:#04x}")
            if msg.flags & I2C_M_RD:
                data = device.read(msg.len)
                if len(data) != msg.len:
                    raise AssertionError(f"simulated device returned {len(data)} bytes for {msg.len}")
                ctypes.memmove(msg.buf, data, msg.len)
            else:
                device.write(bytes(msg))

    def close(self) -> None:
        pass


class FakeClock:
    """``clock()`` and ``sleep(s)`` for tests: sleeping advances the clock."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# -- BME280 ----------------------------------------------------------------------------
def _bisect(f: Callable[[int], float], target: float, lo: int, hi: int, increasing: bool) -> int:
    """The integer in [lo, hi] where the monotonic ``f`` comes closest to ``target``."""
    while lo < hi:
        mid = (lo + hi) // 2
        if (f(mid) < target) == increasing:
            lo = mid + 1
        else:
            hi = mid
    return lo


def bme280_raw(cal: bme280.Calibration, temp: float, rh: float, pressure: float) -> bme280.Raw:
    """ADC words whose compensation gives ``temp`` °C, ``rh`` %, ``pressure`` Pa (nearest)."""
    adc_t = _bisect(lambda a: bme280.compensate_t(cal, a) / 100, temp, 0, (1 << 20) - 1, True)
    fine = bme280.t_fine(cal, adc_t)
    adc_p = _bisect(lambda a: bme280.compensate_p(cal, a, fine) / 256, pressure, 0, (1 << 20) - 1, False)
    adc_h = _bisect(lambda a: bme280.compensate_h(cal, a, fine) / 1024, rh, 0, 0xFFFF, True)
    return bme280.Raw(adc_p=adc_p, adc_t=adc_t, adc_h=adc_h)


class SimBme280(Device):
    """A BME280's register map: chip id, trimming NVM, ctrl registers, forced conversions.

    ``chip_id=0x58`` makes it a BMP280 (no humidity registers answer sensibly).
    """

    CONVERSION_S = 0.008

    def __init__(self, temp: float = 21.0, rh: float = 55.0, pressure: float = 101_325.0,
                 calibration: bme280.Calibration = EXAMPLE_CALIBRATION,
                 chip_id: int = bme280.CHIP_ID) -> None:
        self.temp, self.rh, self.pressure = temp, rh, pressure
        self.calibration = calibration
        self.regs = bytearray(256)
        self.regs[bme280.REG_ID] = chip_id
        tp, h = bme280.calibration_bytes(calibration)
        self.regs[bme280.REG_CALIB_TP : bme280.REG_CALIB_TP + len(tp)] = tp
        self.regs[bme280.REG_CALIB_H : bme280.REG_CALIB_H + len(h)] = h
        self.regs[0xF7:0xFF] = bytes((0x80, 0, 0, 0x80, 0, 0, 0x80, 0))  # reset values: "skipped"
        self.pointer = 0
        self.ready_at: float | None = None
        self.conversions = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pointer = data[0]
        for reg, value in zip(data[0::2], data[1::2], strict=False):
            self._write_register(reg, value)

    def _write_register(self, reg: int, value: int) -> None:
        if reg == bme280.REG_RESET and value == bme280.RESET_WORD:
            self.regs[bme280.REG_CTRL_HUM : bme280.REG_CTRL_MEAS + 1] = bytes(3)
            return
        if reg in (bme280.REG_CTRL_HUM, 0xF5):
            self.regs[reg] = value
        elif reg == bme280.REG_CTRL_MEAS:
            self.regs[reg] = value
            if value & 0b11 in (0b01, 0b10):  # forced mode
                self.ready_at = self.clock() + self.CONVERSION_S

    def _settle(self) -> None:
        if self.ready_at is None:
            return
        if self.clock() < self.ready_at:
            self.regs[bme280.REG_STATUS] |= bme280.STATUS_MEASURING
            return
        raw = bme280_raw(self.calibration, self.temp, self.rh, self.pressure)
        self.regs[0xF7:0xFA] = (raw.adc_p << 4).to_bytes(3, "big")
        self.regs[0xFA:0xFD] = (raw.adc_t << 4).to_bytes(3, "big")
        self.regs[0xFD:0xFF] = raw.adc_h.to_bytes(2, "big")
        self.regs[bme280.REG_STATUS] &= ~bme280.STATUS_MEASURING & 0xFF
        self.regs[bme280.REG_CTRL_MEAS] &= 0xFC  # back to sleep mode after a forced conversion
        self.ready_at = None
        self.conversions += 1

    def read(self, n: int) -> bytes:
        self._settle()
        out = bytes(self.regs[(self.pointer + i) & 0xFF] for i in range(n))
        self.pointer = (self.pointer + n) & 0xFF
        return out


# -- Sensirion ---------------------------------------------------------------------------
def sensirion_triplets(*words: int, corrupt: bool = False) -> bytes:
    out = b""
    for word in words:
        raw = word.to_bytes(2, "big")
        out += raw + bytes((crc8(raw) ^ (0x01 if corrupt else 0),))
    return out


def _clip16(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


class _Sensirion(Device):
    CONVERSION_S = 0.005

    def __init__(self, temp: float, rh: float) -> None:
        self.temp, self.rh = temp, rh
        self.pending: bytes | None = None
        self.ready_at = 0.0
        self.corrupt_next = 0
        self.conversions = 0

    def words(self) -> tuple[int, int]:
        raise NotImplementedError

    def _answer(self, data: bytes, delay: float = 0.0) -> None:
        self.pending, self.ready_at = data, self.clock() + delay

    def _measure(self) -> None:
        self.conversions += 1
        corrupt = self.corrupt_next > 0
        self.corrupt_next -= corrupt
        self._answer(sensirion_triplets(*self.words(), corrupt=corrupt), self.CONVERSION_S)

    def read(self, n: int) -> bytes:
        if self.pending is None or self.clock() < self.ready_at:
            raise nack("no data ready")
        data, self.pending = self.pending[:n], None
        return data


class SimSht3x(_Sensirion):
    """SHT3x: 0x2400 single shot, 0x30A2 soft reset, 0xF32D status; others NACKed."""

    CONVERSION_S = 0.0125  # typical high-repeatability conversion

    def __init__(self, temp: float = 21.0, rh: float = 55.0) -> None:
        super().__init__(temp, rh)
        self.status = 0x8010  # alert pending, reset detected: the power-up state

    def words(self) -> tuple[int, int]:
        return _clip16((self.temp + 45) * 65535 / 175), _clip16(self.rh * 65535 / 100)

    def write(self, data: bytes) -> None:
        if data == sht3x.MEASURE_HIGH:
            self._measure()
        elif data == sht3x.SOFT_RESET:
            self.status, self.pending = 0x0010, None
        elif data == sht3x.READ_STATUS:
            self._answer(sensirion_triplets(self.status))
        else:
            raise nack(f"SHT3x has no command {data.hex()}")


class SimSht4x(_Sensirion):
    """SHT4x: 0xFD high-precision measurement, 0x94 soft reset, 0x89 serial number."""

    CONVERSION_S = 0.0069  # typical high-precision conversion

    def __init__(self, temp: float = 21.0, rh: float = 55.0, serial: int = 0x0B4D_2E5F) -> None:
        super().__init__(temp, rh)
        self.serial = serial

    def words(self) -> tuple[int, int]:
        return _clip16((self.temp + 45) * 65535 / 175), _clip16((self.rh + 6) * 65535 / 125)

    def write(self, data: bytes) -> None:
        if data == sht4x.MEASURE_HIGH:
            self._measure()
        elif data == sht4x.SOFT_RESET:
            self.pending = None
        elif data == sht4x.READ_SERIAL:
            self._answer(sensirion_triplets(self.serial >> 16, self.serial & 0xFFFF), 0.001)
        else:
            raise nack(f"SHT4x has no command {data.hex()}")


class SimHtu21d(Device):
    """HTU21D or Si7021: 0xF5/0xF3 no-hold measurements (NACK until done), 0xFE, 0xE7."""

    def __init__(self, temp: float = 21.0, rh: float = 55.0, model: str = "htu21d") -> None:
        if model not in htu21d.MODELS:
            raise ValueError(model)
        self.temp, self.rh, self.model = temp, rh, model
        self.user_register = 0x3A if model == "si7021" else 0x02
        self.pending: bytes | None = None
        self.ready_at = 0.0
        self.corrupt_next = 0
        self.conversions = 0

    def _word(self, code: float, status: int) -> bytes:
        raw = ((_clip16(code) & ~htu21d.STATUS_MASK) | status).to_bytes(2, "big")
        corrupt = self.corrupt_next > 0
        self.corrupt_next -= corrupt
        return raw + bytes((htu21d.crc(raw) ^ (0x01 if corrupt else 0),))

    def write(self, data: bytes) -> None:
        now = self.clock()
        if data == htu21d.MEASURE_RH_NO_HOLD:
            self.conversions += 1
            self.pending = self._word((self.rh + 6) * 65536 / 125, htu21d.STATUS_IS_HUMIDITY)
            self.ready_at = now + (0.012 if self.model == "si7021" else 0.014)
        elif data == htu21d.MEASURE_T_NO_HOLD:
            self.conversions += 1
            self.pending = self._word((self.temp + 46.85) * 65536 / 175.72, 0)
            self.ready_at = now + (0.007 if self.model == "si7021" else 0.044)
        elif data == htu21d.SOFT_RESET:
            self.pending, self.user_register = None, (0x3A if self.model == "si7021" else 0x02)
        elif data == htu21d.READ_USER_REGISTER:
            self.pending, self.ready_at = bytes((self.user_register,)), now
        else:
            raise nack(f"{self.model} has no command {data.hex()}")

    def read(self, n: int) -> bytes:
        if self.pending is None or self.clock() < self.ready_at:
            raise nack("conversion in progress")
        data, self.pending = self.pending[:n], None
        return data


# -- IIO sysfs ---------------------------------------------------------------------------
def write_iio_device(root: Path, index: int, name: str, **attributes: float | int | str) -> Path:
    """``root/iio:device<index>/`` with a ``name`` file and one file per attribute
    (``in_temp_input=21500`` writes ``in_temp_input`` holding ``21500``)."""
    device = root / f"iio:device{index}"
    device.mkdir(parents=True, exist_ok=True)
    (device / "name").write_text(name + "\n")
    for attribute, value in attributes.items():
        (device / attribute).write_text(f"{value}\n")
    return device


class FlakyReader:
    """Reads sysfs files like ``Path.read_text`` but fails with EIO where ``pattern``
    says (cycled; True fails), as the kernel DHT driver does when it misses a bit.

    Only reads of ``files`` consume the pattern: the driver talks to the sensor on the
    first attribute read and serves the other from its cache (2 s), so the humidity
    read is the one that fails."""

    def __init__(self, pattern: Iterable[bool],
                 files: tuple[str, ...] = ("in_humidityrelative_input",)) -> None:
        self._pattern = itertools.cycle(list(pattern))
        self.files = files
        self.calls = 0
        self.failures = 0

    def __call__(self, path: Path) -> str:
        self.calls += 1
        if path.name in self.files and next(self._pattern):
            self.failures += 1
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return path.read_text()
