"""The one exception hierarchy of civicair.

Every error civicair raises on purpose derives from :class:`CivicairError`. The I/O
shells (the bridge's serial loop, the ingest's consumer) count and skip
:class:`RecoverableError`; anything else is fatal.
"""

from __future__ import annotations


class CivicairError(Exception):
    """Base of every error civicair raises on purpose."""


class RecoverableError(CivicairError):
    """Bad input that is skipped and counted: the next frame or message may be fine."""


class ContractError(RecoverableError):
    """A payload that breaks the wire contract (see :mod:`civicair.schema.contract`)."""


class FatalError(CivicairError):
    """Configuration or environment problem that retrying cannot fix."""


class ConfigError(FatalError):
    """The configuration is missing a value or holds a wrong one."""
