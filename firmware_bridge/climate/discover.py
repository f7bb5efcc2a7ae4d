"""Find temperature/humidity companions: I²C parts at their usual addresses, IIO devices.

Used by ``civicair bridge doctor``. Each candidate address is tried with the codecs
that can live there (BME280 at 0x76/0x77; SHT3x at 0x44/0x45; SHT4x at 0x44/0x45/0x46;
HTU21D/Si7021 at 0x40): a part counts as found only when it answers its own commands
with valid data (chip id, CRCs, a plausible reading). Probing sends only those parts'
read, reset and measurement commands. The bus opener, ``/dev`` and the IIO root are
injectable, so tests run it on a simulated bus and a fake sysfs tree.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_bridge.climate import htu21d, iio
from firmware_bridge.climate.base import ClimateError, ClimateSample, WrongDevice
from firmware_bridge.climate.i2c import I2cCompanion, open_bus

#: Address -> the kinds to try there, in order.
CANDIDATES: dict[int, tuple[str, ...]] = {
    0x76: ("bme280",),
    0x77: ("bme280",),
    0x44: ("sht3x", "sht4x"),
    0x45: ("sht3x", "sht4x"),
    0x46: ("sht4x",),
    0x40: ("htu21d",),
}
_BUS_RE = re.compile(r"i2c-(\d+)")


@dataclass(frozen=True, slots=True)
class Found:
    """A companion that answered (``usable``), or a part that cannot serve (a BMP280)."""

    kind: str
    detail: str
    usable: bool = True
    bus: int | None = None
    address: int | None = None
    device: str | None = None
    model: str | None = None

    def toml(self) -> str:
        """The ``[[climate]]`` table to paste into bridge.toml."""
        lines = ["[[climate]]", f'kind = "{self.kind}"']
        if self.kind == "iio":
            lines.append(f'device = "{self.device}"')
            if self.model:
                lines.append(f'model = "{self.model}"')
        else:
            lines += [f"bus = {self.bus}", f"address = {self.address:#04x}"]
        return "\n".join(lines)


def describe(sample: ClimateSample) -> str:
    parts = []
    if sample.temp is not None:
        parts.append(f"{sample.temp:.1f} °C")
    if sample.rh is not None:
        parts.append(f"{sample.rh:.1f} %RH")
    if sample.pressure is not None:
        parts.append(f"{sample.pressure / 100:.1f} hPa")
    return ", ".join(parts) or "no values"


def i2c_buses(dev_root: Path = Path("/dev")) -> list[int]:
    """The N of every ``/dev/i2c-N``, in order."""
    if not dev_root.is_dir():
        return []
    numbers = [int(m.group(1)) for p in dev_root.iterdir() if (m := _BUS_RE.fullmatch(p.name))]
    return sorted(numbers)


def probe(bus: Any, bus_number: int, address: int,
          sleep: Callable[[float], None] = time.sleep) -> Found | None:
    """What answers at ``address``, or None."""
    for kind in CANDIDATES.get(address, ()):
        companion = I2cCompanion(kind, bus, address, sleep=sleep)
        where = f"{address:#04x} on /dev/i2c-{bus_number}"
        try:
            companion.start()
        except WrongDevice as exc:
            if "BMP280" in str(exc):
                return Found("bme280", f"a BMP280 at {where}: it has no humidity sensor, so it cannot serve "
                             "the PM corrections (use a BME280 or an SHT3x/SHT4x)", usable=False,
                             bus=bus_number, address=address)
            continue
        except (ClimateError, OSError):
            continue
        if kind == "htu21d" and companion.codec.user_register is not None:
            kind = htu21d.kind_hint(companion.codec.user_register)
            companion.kind = companion.codec.model = kind
        sample = companion.read()
        if sample is None:
            continue
        return Found(kind, f"{kind} at {where}: {describe(sample)}", bus=bus_number, address=address)
    return None


def scan_i2c(dev_root: Path = Path("/dev"), opener: Callable[[int], Any] = open_bus,
             sleep: Callable[[float], None] = time.sleep) -> tuple[list[int], list[Found]]:
    """Every bus, every candidate address: (bus numbers, what answered)."""
    buses = i2c_buses(dev_root)
    found: list[Found] = []
    for number in buses:
        try:
            bus = opener(number)
        except OSError:
            continue
        try:
            for address in CANDIDATES:
                hit = probe(bus, number, address, sleep)
                if hit is not None:
                    found.append(hit)
        finally:
            close = getattr(bus, "close", None)
            if close is not None:
                close()
    return buses, found


def scan_iio(root: Path = iio.IIO_ROOT, read_text: Callable[[Path], str] = iio._read_text,
             sleep: Callable[[float], None] = time.sleep) -> list[Found]:
    """Every IIO device with a humidity channel, with one reading each."""
    found = []
    devices = iio.find_devices(root, read_text, require_humidity=True)
    names = [n for _, n in iio.find_devices(root, read_text)]
    for dirname, name in devices:
        # Prefer the name (stable across reboots) unless two devices share it.
        device = name if name != "?" and names.count(name) == 1 else dirname
        model = "dht22" if name == "dht11" else None
        reader = iio.IioReader(device, model=model or name, root=root, read_text=read_text, sleep=sleep)
        sample = reader.read()
        reading = describe(sample) if sample else f"no reading yet ({reader.last_error})"
        hint = " (the dht11 driver serves DHT11 and DHT22/AM2302 alike: set model to yours)" if model else ""
        found.append(Found("iio", f"IIO {dirname} \"{name}\": {reading}{hint}", device=device, model=model))
    return found
