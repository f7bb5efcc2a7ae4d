"""Serial shell: opens the port, survives unplugging, hands bytes to the parser.

Owns the pyserial port and its reopening with backoff. It must not parse or decide:
what to write after an open is the sensor state machine's (:mod:`firmware_bridge.sensorloop`),
passed in as ``on_open``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import serial

log = logging.getLogger("civicair.bridge.serial")


class SerialPort:
    """A pyserial port that reopens itself with backoff when it fails."""

    def __init__(self, path: str | os.PathLike, baudrate: int, *, read_timeout: float = 0.5,
                 stop: threading.Event | None = None,
                 on_open: Callable[[SerialPort], None] | None = None) -> None:
        self.path = os.fspath(path)
        self.baudrate = baudrate
        self.read_timeout = read_timeout
        self.stop = stop or threading.Event()
        self.on_open = on_open  # called with the open port: (re)initialise the sensor
        self.reopens = 0
        self._port: serial.Serial | None = None

    def _open(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                port = serial.Serial(self.path, self.baudrate, timeout=self.read_timeout)
            except (serial.SerialException, OSError) as exc:
                log.warning("serial port %s unavailable (%s); retrying in %.0f s", self.path, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._port = port
            log.info("serial port %s open at %d baud", self.path, self.baudrate)
            if self.on_open:
                self.on_open(self)
            return

    def read(self, size: int = 256) -> bytes:
        """Bytes available within the read timeout; b"" on timeout or shutdown."""
        if self._port is None:
            self._open()
            if self._port is None:
                return b""
        try:
            data = self._port.read(size)
        except (serial.SerialException, OSError) as exc:
            log.warning("serial port %s failed (%s); reopening", self.path, exc)
            self.close()
            self.reopens += 1
            return b""
        return data

    def write(self, data: bytes) -> None:
        if self._port is None:
            return
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            log.warning("serial port %s write failed (%s)", self.path, exc)
            self.close()

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
            self._port = None

