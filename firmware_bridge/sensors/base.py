"""What every sensor family shares: the events its parser returns, the counters it keeps,
and the interface each family module implements (:class:`SensorFamily`).

Sans-IO: nothing here imports serial, MQTT, sockets or clocks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Measurement:
    """One data frame, decoded.

    ``values`` maps contract field names (units in
    :data:`civicair.schema.contract.MEASURED_FIELDS`) to numbers.
    """

    sensor: str
    values: Mapping[str, float]
    #: Sensor-specific status/error bits, 0 when the sensor reports none.
    status: int = 0


@dataclass(frozen=True, slots=True)
class CommandReply:
    """A sensor's answer to a command: recognised, never counted as an error."""

    sensor: str
    command: int
    data: bytes = b""
    #: The answer's own status where the protocol has one (the Sensirion SHDLC
    #: state byte: execution error code in bits 0-6, device error flag in bit 7);
    #: 0 otherwise.
    state: int = 0


Event = Measurement | CommandReply


@dataclass(slots=True)
class ParserStats:
    """What a parser skipped, by reason; the I/O shell logs and reports these."""

    frames: int = 0
    replies: int = 0
    skipped_bytes: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class FrameParser(Protocol):
    """A family's stream parser: ``feed(bytes) -> list[Event]``; never raises on input."""

    stats: ParserStats

    def feed(self, data: bytes) -> list[Event]: ...


@runtime_checkable
class SensorFamily(Protocol):
    """The names every family module (``plantower``, ``sds011``, ``sps30``) exports.

    The modules themselves implement it (PEP 544, modules as implementations): mypy
    checks each one where :data:`firmware_bridge.sensors.FAMILIES` is built, and
    ``isinstance(module, SensorFamily)`` checks that the names exist at run time.
    Read-only properties, so a module constant of a narrower type conforms.
    """

    @property
    def BAUD_RATE(self) -> int:  # noqa: N802 - the module constant's name
        """The UART speed the sensor speaks."""

    @property
    def MODELS(self) -> tuple[str, ...]:  # noqa: N802
        """The contract sensor names the module handles."""

    @property
    def COMMANDS(self) -> Mapping[str, bytes]:  # noqa: N802
        """Command name -> bytes; ``sleep``, ``wake`` and ``passive_read`` mean the same in
        every family."""

    @property
    def INIT_SEQUENCE(self) -> tuple[str, ...]:  # noqa: N802
        """Command names sent after every (re)open of the port."""

    @property
    def POLL(self) -> tuple[str, float] | None:  # noqa: N802
        """``(command name, period s)`` for a sensor that must be asked for each reading
        (the SPS30); None when the sensor streams."""

    @property
    def Parser(self) -> Callable[[str], FrameParser]:  # noqa: N802
        """``Parser(model)``: the family's stream parser for one model."""

    def reconcile(self, event: Event) -> bytes | None:
        """The command that brings a flash-kept setting to what the bridge needs, given a
        reply reporting it; None when nothing is to be written (every family but SDS011)."""

    def encode_frame(self, model: str, values: Mapping[str, float], status: int = 0) -> bytes:
        """The sensor's own data frame for ``values`` (the simulator and the tests use it)."""
