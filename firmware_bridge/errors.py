"""One exception hierarchy for the bridge.

The I/O shells count and skip :class:`RecoverableError`; anything else is fatal.
Parsers raise nothing on bad input: they count it by reason in their
:class:`~firmware_bridge.sensors.base.ParserStats` (so there is no checksum or frame
error class), and warm-up is a state of :mod:`firmware_bridge.sensorloop`, not an error.
"""


class CivicairError(Exception):
    """Base of every error civicair raises on purpose."""


class RecoverableError(CivicairError):
    """Bad input that is skipped and counted: the next frame may be fine."""


class ContractError(RecoverableError):
    """A payload that breaks the wire contract (see :mod:`firmware_bridge.contract`)."""


class FatalError(CivicairError):
    """Configuration or environment problem that retrying cannot fix."""


class ConfigError(FatalError):
    """The configuration is missing a value or holds a wrong one."""
