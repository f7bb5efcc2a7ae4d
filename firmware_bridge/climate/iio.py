"""Humidity and temperature from any Linux IIO device, through sysfs.

Reference: the kernel's ABI description, Documentation/ABI/testing/sysfs-bus-iio:
``in_humidityrelative_input`` is relative humidity in milli percent and
``in_temp_input`` temperature in milli degrees Celsius, both already scaled. A device
that offers only ``in_X_raw`` is read as ``(raw + offset) * scale`` (``in_X_offset``
default 0, ``in_X_scale`` default 1), which gives the same milli units.

This covers the DHT11/DHT22/AM2302 (``dtoverlay=dht11,gpiopin=4`` loads the ``dht11``
driver, which handles both), and the kernel's own drivers for the BME280 (``bmp280``,
name ``bme280``), HDC100x, HTS221, Si7020 and others. A device is chosen as
``iio:deviceN`` or by the contents of its ``name`` file (``dht11``), which, unlike
the number, survives a reboot with another probe order.

The DHT driver fails a read with EIO (or ETIMEDOUT, EAGAIN) whenever it misses a bit
of the sensor's timing-based protocol, often: a failed read is retried a few times,
counted, and never raised. The sysfs root and the file reader are injectable for tests.
"""

from __future__ import annotations

import errno
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from firmware_bridge.climate.base import ClimateSample

IIO_ROOT = Path("/sys/bus/iio/devices")
DEVICE_RE = re.compile(r"iio:device\d+")
CHANNELS = {"rh": "humidityrelative", "temp": "temp"}
#: The DHT22 answers at most every 2 s (the kernel driver caches a reading that long);
#: a retry sooner only returns the same failure.
RETRY_S = 2.1
RETRIES = 2


def _read_text(path: Path) -> str:
    return path.read_text()


def find_devices(root: Path = IIO_ROOT, read_text: Callable[[Path], str] = _read_text,
                 require_humidity: bool = False) -> list[tuple[str, str]]:
    """``(iio:deviceN, name)`` of every IIO device with a humidity or temperature channel
    (with ``require_humidity``: a humidity channel, what the PM corrections need)."""
    found: list[tuple[str, str]] = []
    if not root.is_dir():
        return found
    for device in sorted(root.iterdir(), key=lambda p: (len(p.name), p.name)):
        if not DEVICE_RE.fullmatch(device.name):
            continue
        files = {p.name for p in device.iterdir()}
        wanted = [CHANNELS["rh"]] if require_humidity else list(CHANNELS.values())
        if not any(f"in_{ch}_input" in files or f"in_{ch}_raw" in files for ch in wanted):
            continue
        try:
            name = read_text(device / "name").strip()
        except OSError:
            name = "?"
        found.append((device.name, name))
    return found


def resolve(device: str, root: Path = IIO_ROOT, read_text: Callable[[Path], str] = _read_text) -> Path:
    """The directory of ``iio:deviceN`` or of the device named ``device``; FileNotFoundError
    with the devices there are when there is none."""
    if DEVICE_RE.fullmatch(device):
        path = root / device
        if path.is_dir():
            return path
    else:
        for dirname, name in find_devices(root, read_text):
            if name == device:
                return root / dirname
    present = ", ".join(f"{d} ({n})" for d, n in find_devices(root, read_text)) or "none"
    raise FileNotFoundError(f"no IIO device {device!r} under {root}; humidity/temperature devices: {present}")


class IioReader:
    """``read()`` a :class:`ClimateSample` from one IIO device, or None (error counted)."""

    def __init__(self, device: str, *, model: str = "iio", root: Path = IIO_ROOT,
                 read_text: Callable[[Path], str] = _read_text, retries: int = RETRIES,
                 retry_s: float = RETRY_S, sleep: Callable[[float], None] = time.sleep) -> None:
        self.device, self.model, self.root = device, model, root
        self.read_text, self.retries, self.retry_s, self.sleep = read_text, retries, retry_s, sleep
        self.errors: Counter[str] = Counter()
        self.retried = 0
        self.samples = 0
        #: The last failure's full text, for logs and ``bridge doctor``.
        self.last_error = ""
        self._path: Path | None = None

    def _channel(self, path: Path, channel: str) -> float | None:
        """The channel in its base unit (°C, %), or None when the device lacks it."""
        processed = path / f"in_{channel}_input"
        if processed.exists():
            return float(self.read_text(processed)) / 1000
        raw = path / f"in_{channel}_raw"
        if not raw.exists():
            return None
        value = float(self.read_text(raw))
        offset_file, scale_file = path / f"in_{channel}_offset", path / f"in_{channel}_scale"
        offset = float(self.read_text(offset_file)) if offset_file.exists() else 0.0
        scale = float(self.read_text(scale_file)) if scale_file.exists() else 1.0
        return (value + offset) * scale / 1000

    def _once(self) -> ClimateSample:
        if self._path is None or not self._path.is_dir():  # gone: it may be back as another N
            self._path = resolve(self.device, self.root, self.read_text)
        values = {key: self._channel(self._path, channel) for key, channel in CHANNELS.items()}
        if values["rh"] is None and values["temp"] is None:
            raise ValueError(f"{self._path} has neither in_humidityrelative_* nor in_temp_*")
        for key, value in values.items():
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{key} reads {value}")
        rh = values["rh"]
        if rh is not None and not 0.0 <= rh <= 100.0:
            raise ValueError(f"relative humidity {rh:g} % is outside 0..100 %")
        return ClimateSample(model=self.model, temp=values["temp"], rh=rh)

    def read(self) -> ClimateSample | None:
        """One sample; each failure is counted, retried up to ``retries`` times, never raised."""
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                self.sleep(self.retry_s)
            try:
                sample = self._once()
            except FileNotFoundError as exc:
                self._path = None  # the device may come back (module reload) under a new number
                self.errors["missing device"] += 1
                self.last_error = str(exc)
                return None  # no point retrying a device that is not there
            except OSError as exc:
                self.errors[errno.errorcode.get(exc.errno or 0, "OSError")] += 1
                self.last_error = str(exc)
                continue
            except ValueError as exc:
                self.errors["bad value"] += 1
                self.last_error = str(exc)
                continue
            self.samples += 1
            return sample
        return None
