"""Events every sensor parser returns, and the counters it keeps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Measurement:
    """One data frame, decoded.

    ``values`` maps contract field names (units in
    :data:`firmware_bridge.contract.MEASURED_FIELDS`) to numbers.
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
