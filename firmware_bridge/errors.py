"""The bridge's errors: the shared hierarchy of :mod:`civicair.schema.errors`, plus the
serial-frame errors only the bridge raises.

The I/O shells count and skip :class:`RecoverableError`; anything else is fatal.
"""

from civicair.schema.errors import (
    CivicairError,
    ConfigError,
    ContractError,
    FatalError,
    RecoverableError,
)

__all__ = ["CivicairError", "ChecksumError", "ConfigError", "ContractError", "FatalError", "FrameError",
           "RecoverableError", "WarmingUp"]


class ChecksumError(RecoverableError):
    """A frame whose checksum does not match its bytes."""


class FrameError(RecoverableError):
    """A frame with an impossible length or layout."""


class WarmingUp(RecoverableError):
    """A frame read while the sensor is still warming up."""
