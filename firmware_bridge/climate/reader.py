"""The bridge's shell around one temperature/humidity companion: a small thread.

Each ``[[climate]]`` table gets a :class:`CompanionReader`: it opens the part (an I²C
codec over ``smbus2``, :mod:`.i2c`; an IIO device, :mod:`.iio`; or, with
``simulate = true``, a simulated part on a simulated bus, :mod:`.simulated`), reads it
every ``interval`` seconds and feeds a :class:`~.window.CompanionAccumulator` on the
wall clock, the clock the PM sampler's windows are on. The sensor loops ask it for a
window's summary (:meth:`CompanionReader.window`) when they spool a reading.

Never fatal: a failed read is counted (:meth:`CompanionReader.stats`, in the bridge's
meta) and the next is tried; a part that is not there, or is the wrong part
(``WrongDevice``), is logged and retried every minute, and the PM readings go on
without a companion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from firmware_bridge.climate.base import ClimateError, ClimateSample, WrongDevice
from firmware_bridge.climate.window import CompanionAccumulator, CompanionWindow
from firmware_bridge.config import ClimateConfig

log = logging.getLogger("civicair.bridge")

#: Wait this long before opening a part again that failed to start.
RETRY_START_S = 60.0


class CompanionReader(threading.Thread):
    """Reads one companion every ``interval`` s into its accumulator; see the module."""

    def __init__(self, config: ClimateConfig, stop: threading.Event,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(name=f"climate-{config.source}", daemon=True)
        self.config = config
        self.stop_event = stop
        self.clock = clock
        self.accumulator = CompanionAccumulator(config.source)
        self._lock = threading.Lock()  # the accumulator is read by the sensor threads
        self._reader: Any = None
        self._weather: Any = None
        self._device: Any = None
        #: Failures outside the reader's own counters (opening the part).
        self.open_errors: Counter[str] = Counter()

    # -- what the sensor loops ask ----------------------------------------------------
    def window(self, start: float, end: float) -> CompanionWindow:
        with self._lock:
            return self.accumulator.window(start, end)

    def stats(self) -> dict[str, Any]:
        """Reads that worked and failed (by reason), for the bridge's meta."""
        errors = Counter(self.open_errors)
        samples = 0
        if self._reader is not None:
            errors.update(self._reader.errors)
            samples = self._reader.samples
        return {"samples": samples, "errors": dict(errors)}

    # -- the thread ---------------------------------------------------------------------
    def _open(self) -> Any:
        cfg = self.config
        if cfg.kind == "iio":
            from firmware_bridge.climate.iio import IioReader

            return IioReader(str(cfg.device), model=cfg.source)
        from firmware_bridge.climate.i2c import I2cCompanion, open_bus

        assert cfg.address is not None  # the config gives I²C kinds their usual address
        if cfg.simulate:
            from firmware_bridge.climate.simulated import SimulatedBus, SimulatedWeather, simulated_device

            self._device = simulated_device(cfg.kind)
            self._weather = SimulatedWeather(cfg.source)
            self._weather.apply(self._device, self.clock())
            bus: Any = SimulatedBus({cfg.address: self._device})
        else:
            bus = open_bus(cfg.bus if cfg.bus is not None else 1)
        companion = I2cCompanion(cfg.kind, bus, cfg.address)
        try:
            companion.start()
        except BaseException:
            _close(bus)  # smbus2 holds a file descriptor until closed: one a retry otherwise
            raise
        return companion

    def read_once(self) -> ClimateSample | None:
        """One read (opening the part first when needed); the sample, or None."""
        if self._reader is None:
            try:
                self._reader = self._open()
            except (OSError, ClimateError, WrongDevice, ImportError) as exc:
                self.open_errors[type(exc).__name__] += 1
                log.warning("climate companion %s (%s) cannot be opened: %s; retrying in %.0f s",
                            self.config.source, self.config.kind, exc, RETRY_START_S)
                return None
        if self._weather is not None:
            self._weather.apply(self._device, self.clock())
        try:
            sample: ClimateSample | None = self._reader.read()
        except WrongDevice as exc:  # the part changed under us: start again later
            self.open_errors[type(exc).__name__] += 1
            log.warning("climate companion %s: %s", self.config.source, exc)
            _close(getattr(self._reader, "bus", None))
            self._reader = None
            return None
        return sample

    def run(self) -> None:
        interval = self.config.interval
        while not self.stop_event.is_set():
            sample = self.read_once()
            if self._reader is None:  # could not open: wait, then try again
                self.stop_event.wait(RETRY_START_S)
                continue
            with self._lock:  # a failed read (None) counts in the window's errors
                self.accumulator.add(self.clock(), sample)
            self.stop_event.wait(interval)


def _close(bus: Any) -> None:
    close = getattr(bus, "close", None)
    if close is not None:
        close()
