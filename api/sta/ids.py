"""Integer ``@iot.id`` values, derived from what identifies an entity, so they are the same
after every restart and on every API process, without a table to keep.

Layout (all below 2**63, the int64 clients such as FROST's Java and Python expect):

- Thing: a 27-bit hash of the station id (1 … 2**27 - 1). The hash is salted again
  when two stations collide; stations are probed in id order, so only the later
  of a colliding pair moves (collisions are rare: about 1 in 270 for 1,000 stations).
- Location, HistoricalLocation: ``thing << 8 | k`` (k-th published position, from 0);
  FeatureOfInterest: the Thing's id.
- Datastream: ``thing << 4 | channel << 3 | property`` (channel a = 0, b = 1;
  property index 0 … 5), below 2**31.
- Observation: ``datastream << 32 | t`` with t the reading's time in s since the epoch
  (window end), so ``Observations(id)`` is one query for one point.
- Sensor, ObservedProperty: small fixed numbers (positions in their tables).
"""

from __future__ import annotations

import hashlib

THING_BITS = 27
MAX_ID = 2**63 - 1
CHANNELS = ("a", "b")


def station_hash(station: str, salt: int = 0) -> int:
    digest = hashlib.blake2b(f"{station}#{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**THING_BITS - 1) + 1


def assign_things(stations: list[str]) -> dict[str, int]:
    """Thing id per station, collisions resolved by re-salting the later station (in id order)."""
    taken: dict[int, str] = {}
    out = {}
    for station in sorted(stations):
        salt = 0
        while (tid := station_hash(station, salt)) in taken:
            salt += 1
        taken[tid] = station
        out[station] = tid
    return out


def datastream_id(thing: int, channel: str, prop: int) -> int:
    return thing << 4 | CHANNELS.index(channel) << 3 | prop


def split_datastream(ds: int) -> tuple[int, str, int]:
    """(thing id, channel, property index); ValueError for an id no Datastream can have."""
    prop, channel = ds & 7, ds >> 3 & 1
    if ds <= 0 or prop > 5:
        raise ValueError("not a Datastream id")
    return ds >> 4, CHANNELS[channel], prop


def observation_id(ds: int, t: int) -> int:
    return ds << 32 | t


def split_observation(oid: int) -> tuple[int, int]:
    return oid >> 32, oid & 0xFFFFFFFF


def location_id(thing: int, k: int) -> int:
    return thing << 8 | k
