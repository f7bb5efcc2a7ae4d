"""One exception hierarchy for the bridge.

The I/O shells count and skip :class:`RecoverableError`; anything else is fatal.
"""


class CivicairError(Exception):
    """Base of every error civicair raises on purpose."""


class RecoverableError(CivicairError):
    """Bad input that is skipped and counted: the next frame may be fine."""


class ChecksumError(RecoverableError):
    """A frame whose checksum does not match its bytes."""


class FrameError(RecoverableError):
    """A frame with an impossible length or layout."""


class WarmingUp(RecoverableError):
    """A frame read while the sensor is still warming up."""


class ContractError(RecoverableError):
    """A payload that breaks the wire contract (see :mod:`firmware_bridge.contract`)."""


class FatalError(CivicairError):
    """Configuration or environment problem that retrying cannot fix."""


class ConfigError(FatalError):
    """The configuration is missing a value or holds a wrong one."""
