"""The I/O shell of the I²C companions: runs a codec's plans on an ``smbus2`` bus.

Each :class:`~firmware_bridge.climate.base.Transfer` becomes one ``i2c_rdwr`` call
(a write message, a read message, or both with a repeated start between them); each
:class:`~firmware_bridge.climate.base.Wait` a sleep. The bus is anything with
``i2c_rdwr(*msgs)``: ``smbus2.SMBus`` on the Pi, :class:`.simulated.SimulatedBus` in
tests. Recoverable trouble (a NACK while the sensor converts, a bad CRC, a reading
out of range) is counted in :attr:`I2cCompanion.errors` and never raised; a wrong
device at the address is (:class:`~firmware_bridge.climate.base.WrongDevice`).
"""

from __future__ import annotations

import errno
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from firmware_bridge.climate import family
from firmware_bridge.climate.base import ClimateError, ClimateSample, Plan, Transfer, WrongDevice


class Bus(Protocol):
    def i2c_rdwr(self, *msgs: Any) -> None: ...


def open_bus(number: int) -> Any:
    """``smbus2.SMBus(number)`` (``/dev/i2c-N``); imported here so tests need no hardware."""
    from smbus2 import SMBus

    return SMBus(number)


def run_plan(bus: Bus, address: int, plan: Plan, sleep: Callable[[float], None] = time.sleep) -> list[bytes]:
    """Execute ``plan`` on ``bus`` for the device at ``address``; the bytes of each read.

    Raises OSError as the bus does (NACK: EREMOTEIO/ENXIO; bus trouble: EIO, ETIMEDOUT).
    """
    from smbus2 import i2c_msg

    replies: list[bytes] = []
    for step in plan:
        if not isinstance(step, Transfer):
            sleep(step.seconds)
            continue
        msgs = []
        if step.write:
            msgs.append(i2c_msg.write(address, step.write))
        if step.read:
            reader = i2c_msg.read(address, step.read)
            msgs.append(reader)
        bus.i2c_rdwr(*msgs)
        if step.read:
            replies.append(bytes(reader))
    return replies


class I2cCompanion:
    """One I²C temperature/humidity sensor: ``read()`` a sample or None (error counted)."""

    def __init__(self, kind: str, bus: Bus, address: int,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.kind = kind
        self.codec = family(kind).Codec(kind)
        self.bus, self.address, self.sleep = bus, address, sleep
        self.ready = False
        self.errors: Counter[str] = Counter()
        self.samples = 0
        #: The last failure's full text, for logs and ``bridge doctor``.
        self.last_error = ""

    def start(self) -> None:
        """Run the codec's init plan. Raises WrongDevice; an I/O error or bad reply too
        (as :class:`ClimateError`), so the caller can tell a missing sensor at once."""
        try:
            replies = run_plan(self.bus, self.address, self.codec.init_plan(), self.sleep)
        except OSError as exc:
            raise ClimateError(f"{self.kind} at {self.address:#04x}: no answer ({exc})") from exc
        self.codec.accept_init(replies)
        self.ready = True

    def read(self) -> ClimateSample | None:
        """One measurement; None when it failed (the reason is counted in ``errors``).

        A companion that failed its start (or lost its calibration to a failing bus)
        is started again first.
        """
        try:
            if not self.ready:
                self.start()
            replies = run_plan(self.bus, self.address, self.codec.measure_plan(), self.sleep)
            sample: ClimateSample = self.codec.decode(replies)
        except WrongDevice:
            raise
        except OSError as exc:
            self.errors[errno.errorcode.get(exc.errno or 0, "OSError")] += 1
            self.last_error = str(exc)
            return None
        except ClimateError as exc:
            self.errors[type(exc).__name__] += 1
            self.last_error = str(exc)
            return None
        self.samples += 1
        return sample
