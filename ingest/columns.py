"""Decode a batch of MQTT payloads into columns (numpy arrays), one row per reading.

Pure: bytes in, a :class:`Batch` and dead letters out. A payload is one reading
(JSON object) or an array of them; every reading is checked against the wire
contract owned by :mod:`firmware_bridge.contract`. Missing values are NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, repeat
from operator import attrgetter, itemgetter, methodcaller
from typing import Any

import numpy as np
import orjson

from civicair.schema import contract
from civicair.schema.errors import ContractError

#: Measured fields, in the order they are written.
MEASURED = tuple(contract.MEASURED_FIELDS)
#: Integer header fields kept as columns.
INTEGERS = ("ts", "window", "n", "seq", "boot")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Amendments:
    """``qc`` corrections to points written by earlier batches, one per row (see
    :meth:`ingest.series.SeriesHistory.assess`): written as ``qc``-only points, which
    InfluxDB merges into the stored points (same series, same timestamp)."""

    station: np.ndarray  # str
    sensor: np.ndarray  # str
    channel: np.ndarray  # str
    ts: np.ndarray  # int64
    qc: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(slots=True)
class Batch:
    """Column store of one batch. ``tags`` and ``ints`` are 1-D, ``values`` 2-D."""

    station: np.ndarray  # str
    sensor: np.ndarray  # str
    channel: np.ndarray  # str
    ints: dict[str, np.ndarray]  # int64 columns named in INTEGERS
    synced: np.ndarray  # bool
    values: dict[str, np.ndarray]  # float64 columns, NaN = missing
    #: Derived columns (pm25, qc, …) added by the cleaning stage.
    derived: dict[str, np.ndarray] = field(default_factory=dict)
    #: Set by the cleaning stage when the batch changes the flags of earlier points.
    amended: Amendments | None = None

    def __len__(self) -> int:
        return len(self.station)


def decode(messages: Iterable[tuple[str, bytes]],
           latest_ts: int = contract.LATEST_TS) -> tuple[Batch, list[DeadLetter]]:
    """Readings of the messages as columns, and the messages that are dead letters.
    ``latest_ts``: the latest ``ts`` accepted (see :func:`contract.validate_reading`)."""
    messages = list(messages)
    # The usual batch, every message on a good topic, JSON, and keeping the contract,
    # takes loops that run in C (map, chain, the contract's column-wise check): about
    # 6 µs a reading of 14 fields (orjson 1.5-2, contract 2, columns 2), where checking
    # the contract reading by reading took 7 alone. Anything else takes the careful
    # path, message by message, which finds each bad message and its reason.
    try:
        stations = list(map(_station_of, map(itemgetter(0), messages)))
        docs = list(map(orjson.loads, map(itemgetter(1), messages)))
    except (ContractError, orjson.JSONDecodeError):
        return _decode_carefully(messages, latest_ts)
    kinds = set(map(type, docs))
    if kinds == {dict}:  # one reading a message
        readings, topic_stations = docs, stations
    elif kinds <= {dict, list}:
        items = docs if kinds == {list} else [d if type(d) is list else [d] for d in docs]
        if not all(items):  # an empty array
            return _decode_carefully(messages, latest_ts)
        readings = list(chain.from_iterable(items))
        topic_stations = list(chain.from_iterable(map(repeat, stations, map(len, items))))
    else:
        return _decode_carefully(messages, latest_ts)
    if not contract.readings_keep_contract(readings, topic_stations, latest_ts):
        return _decode_carefully(messages, latest_ts)
    return to_columns(readings), []


#: The station id of a topic, or ContractError; remembered (ids are few, topics repeat).
_station_of = lru_cache(maxsize=16384)(contract.station_from_topic)


def _decode_carefully(messages: list[tuple[str, bytes]],
                      latest_ts: int = contract.LATEST_TS) -> tuple[Batch, list[DeadLetter]]:
    parsed: list[_Message] = []
    dead: list[tuple[int, DeadLetter]] = []
    for i, (topic, payload) in enumerate(messages):
        try:
            station = _station_of(topic)
            doc = orjson.loads(payload)
        except ContractError as exc:
            dead.append((i, DeadLetter(topic, payload, str(exc))))
            continue
        except orjson.JSONDecodeError as exc:
            dead.append((i, DeadLetter(topic, payload, f"not valid JSON: {exc}")))
            continue
        items = doc if isinstance(doc, list) else [doc]
        if not items:
            dead.append((i, DeadLetter(topic, payload, "empty array")))
            continue
        parsed.append((i, topic, payload, station, items))
    kept = _keeping_contract(parsed, dead, latest_ts)
    dead.sort(key=itemgetter(0))  # in the order the messages came
    return to_columns(list(chain.from_iterable(m[4] for m in kept))), [d for _, d in dead]


#: (index in the batch, topic, payload, station of the topic, readings)
_Message = tuple[int, str, bytes, str, list[Any]]


def _keeping_contract(messages: list[_Message], dead: list[tuple[int, DeadLetter]],
                      latest_ts: int = contract.LATEST_TS) -> list[_Message]:
    """The messages whose every reading keeps the contract; the others go to ``dead``.

    The whole batch is checked at once, column by column
    (:func:`~firmware_bridge.contract.readings_keep_contract`). Where that fails, the
    halves are checked, down to single messages, whose readings are then checked one
    by one (:func:`~firmware_bridge.contract.validate_reading`) for the reason. One bad
    reading spoils its message: the producer is broken, keep the evidence whole.
    """
    if not messages:
        return []
    readings = list(chain.from_iterable(m[4] for m in messages))
    topic_stations = list(chain.from_iterable(repeat(m[3], len(m[4])) for m in messages))
    if contract.readings_keep_contract(readings, topic_stations, latest_ts):
        return messages
    if len(messages) > 1:
        half = len(messages) // 2
        return (_keeping_contract(messages[:half], dead, latest_ts)
                + _keeping_contract(messages[half:], dead, latest_ts))
    i, topic, payload, station, items = messages[0]
    try:
        for item in items:
            contract.validate_reading(item, station, latest_ts)
    except ContractError as exc:
        dead.append((i, DeadLetter(topic, payload, str(exc))))
        return []
    return messages  # valid in a way the batch check does not vouch for (see there)


_header = itemgetter("station", "sensor", "channel", "synced", *INTEGERS)
_getter = attrgetter("get")


def _table(dicts: list[dict[str, Any]], names: list[str]) -> np.ndarray:
    """Values of ``names`` in every dict, as float64 columns of shape
    (len(names), len(dicts)); NaN where a name is absent or null.

    The loops over dicts and names run in C (``itemgetter``, or ``map`` of ``dict.get``
    where some dict lacks a name; ``chain``; ``np.array`` turns None into NaN): with
    it :func:`to_columns` takes 1.8 µs a reading of 14 fields, where a generator per
    column took 2.7-3.2.
    """
    flat = None
    if len(names) > 1:
        try:
            flat = list(chain.from_iterable(map(itemgetter(*names), dicts)))
        except KeyError:  # not every dict has every name
            pass
    if flat is None:
        flat = list(chain.from_iterable(map(map, map(_getter, dicts), repeat(names))))
    table = np.array(flat, dtype=np.float64).reshape(len(dicts), len(names))
    return np.ascontiguousarray(table.T)


def to_columns(readings: list[dict[str, Any]]) -> Batch:
    """Readings (already checked against the contract) as a :class:`Batch`."""
    values: dict[str, np.ndarray] = {}
    if not readings:
        header: list[tuple[Any, ...]] = [()] * (4 + len(INTEGERS))
    else:
        header = list(zip(*map(_header, readings), strict=True))  # transposed: one tuple a column
        present = set().union(*readings)
        names = [name for name in MEASURED if name in present]  # fields some reading carries
        if names:
            table = _table(readings, names)
            for name, col, nothing in zip(names, table, np.isnan(table).all(axis=1).tolist(), strict=True):
                if not nothing:  # a column of nothing but nulls is not carried either
                    values[name] = col
        # Window extremes: {"min": {"pm25_atm": 9}} -> column "pm25_atm_min".
        for stat in contract.STAT_KEYS:
            stats = list(map(methodcaller("get", stat, _NO_STATS), readings))
            names = sorted(set().union(*stats))
            if names:
                for name, col in zip(names, _table(stats, names), strict=True):
                    values[f"{name}_{stat}"] = col
    station, sensor, channel, synced, *ints = header
    return Batch(
        station=np.array(station, dtype=object),
        sensor=np.array(sensor, dtype=object),
        channel=np.array(channel, dtype=object),
        ints={k: np.array(col, dtype=np.int64) for k, col in zip(INTEGERS, ints, strict=True)},
        synced=np.array(synced, dtype=bool),
        values=values,
    )


_NO_STATS: dict[str, float] = {}
