"""The bridge's errors: the shared hierarchy of :mod:`civicair.schema.errors`, plus the
one error only the bridge raises.

The I/O shells count and skip :class:`RecoverableError`; anything else is fatal.
The serial parsers raise nothing on bad input: they count it by reason in their
:class:`~firmware_bridge.sensors.base.ParserStats` (so there is no frame-layout error
class), and warm-up is a state of :mod:`firmware_bridge.sensorloop`, not an error.
:class:`ChecksumError` is raised by the climate codecs (a CRC-8 that does not match).
"""

from civicair.schema.errors import (
    CivicairError,
    ConfigError,
    ContractError,
    FatalError,
    RecoverableError,
)

__all__ = ["CivicairError", "ChecksumError", "ConfigError", "ContractError", "FatalError",
           "RecoverableError"]


class ChecksumError(RecoverableError):
    """Bytes whose checksum does not match them."""
