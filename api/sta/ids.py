"""Integer ``@iot.id`` values that users can type (``/Things(1)``), the same after every
restart and on every API process.

Things are numbered 1, 2, 3, … in order of assignment. The numbers are persisted in
measurement :data:`civicair.schema.storage.THING_IDS` (in the rollups' retention policy,
so they never expire with raw readings) by the rollup worker (rollup/things.py): the API
may be read-only. A station not in that table yet gets the id :func:`assign` gives it, the
same rule the worker applies, so the id the API shows first is the one the worker persists.
Every other id is derived from the Thing's:

- Datastream: ``(thing - 1) * 16 + channel * 8 + property + 1`` (channel a = 0, b = 1;
  property = index in ``model.OBSERVED_PROPERTIES``, 0 … 5, never reordered): Thing 1's
  PM2.5 on channel a is Datastream 1, its raw PM2.5 Datastream 2; channel b starts at 9.
  Below 2**31 (Thing ids stop at 2**27 - 1).
- Observation: ``datastream << 32 | t`` with t the reading's time in s since the epoch
  (window end), so ``Observations(id)`` is one query for one point.
- Location, HistoricalLocation: ``k << 27 | thing`` (k-th published position, from 0):
  Location 1 is Thing 1's first position. A Thing that has published none has one
  unlocated Location (null geometry) at k = 0, which its first published position then
  takes over. FeatureOfInterest: the Thing's id.
- Sensor, ObservedProperty: 1, 2, … (positions in their tables; a sensor model outside
  the contract, from a hash, above 1000).

All below 2**63 (the int64 clients such as FROST's Java and Python expect).
"""

from __future__ import annotations

import hashlib

from civicair.schema.storage import MAX_THING_ID
from civicair.schema.storage import assign_thing_ids as assign

__all__ = ["assign", "MAX_ID", "MAX_THING_ID", "CHANNELS", "PROPERTIES"]

THING_BITS = 27
MAX_ID = 2**63 - 1
CHANNELS = ("a", "b")
#: ObservedProperties (model.OBSERVED_PROPERTIES has this many; a Datastream id has room for 8).
PROPERTIES = 6
_PER_CHANNEL = 8
_PER_THING = _PER_CHANNEL * len(CHANNELS)
assert MAX_THING_ID < 2**THING_BITS and MAX_THING_ID * _PER_THING < 2**31


def stable_hash(text: str, modulus: int) -> int:
    """0 … modulus - 1, the same on every process (unlike ``hash``)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % modulus


def datastream_id(thing: int, channel: str, prop: int) -> int:
    return (thing - 1) * _PER_THING + CHANNELS.index(channel) * _PER_CHANNEL + prop + 1


def split_datastream(ds: int) -> tuple[int, str, int]:
    """(thing id, channel, property index); ValueError for an id no Datastream can have."""
    if not 1 <= ds <= MAX_THING_ID * _PER_THING:
        raise ValueError("not a Datastream id")
    thing, rest = divmod(ds - 1, _PER_THING)
    channel, prop = divmod(rest, _PER_CHANNEL)
    if prop >= PROPERTIES:
        raise ValueError("not a Datastream id")
    return thing + 1, CHANNELS[channel], prop


def observation_id(ds: int, t: int) -> int:
    return ds << 32 | t


def split_observation(oid: int) -> tuple[int, int]:
    return oid >> 32, oid & 0xFFFFFFFF


def location_id(thing: int, k: int) -> int:
    return k << THING_BITS | thing


def split_location(lid: int) -> tuple[int, int]:
    """(thing id, k)."""
    return lid & (2**THING_BITS - 1), lid >> THING_BITS
