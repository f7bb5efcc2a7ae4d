"""The bridge's errors: the shared hierarchy of :mod:`civicair.schema.errors`, re-exported.

The I/O shells count and skip :class:`RecoverableError`; anything else is fatal.
Parsers raise nothing on bad input: they count it by reason in their
:class:`~firmware_bridge.sensors.base.ParserStats` (so there is no checksum or frame
error class), and warm-up is a state of :mod:`firmware_bridge.sensorloop`, not an error.
"""

from civicair.schema.errors import (
    CivicairError,
    ConfigError,
    ContractError,
    FatalError,
    RecoverableError,
)

__all__ = ["CivicairError", "ConfigError", "ContractError", "FatalError", "RecoverableError"]
