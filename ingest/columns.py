"""Decode a batch of MQTT payloads into columns (numpy arrays), one row per reading.

Pure: bytes in, a :class:`Batch` and dead letters out. A payload is one reading
(JSON object) or an array of them; every reading is checked against the wire
contract owned by :mod:`firmware_bridge.contract`. Missing values are NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from firmware_bridge import contract
from firmware_bridge.errors import ContractError

#: Measured fields, in the order they are written.
MEASURED = tuple(contract.MEASURED_FIELDS)
#: Integer header fields kept as columns.
INTEGERS = ("ts", "window", "n", "seq", "boot")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str


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

    def __len__(self) -> int:
        return len(self.station)


def decode(messages: Iterable[tuple[str, bytes]]) -> tuple[Batch, list[DeadLetter]]:
    readings: list[dict[str, Any]] = []
    dead: list[DeadLetter] = []
    for topic, payload in messages:
        try:
            station = contract.station_from_topic(topic)
            doc = orjson.loads(payload)
        except ContractError as exc:
            dead.append(DeadLetter(topic, payload, str(exc)))
            continue
        except orjson.JSONDecodeError as exc:
            dead.append(DeadLetter(topic, payload, f"not valid JSON: {exc}"))
            continue
        items = doc if isinstance(doc, list) else [doc]
        if not items:
            dead.append(DeadLetter(topic, payload, "empty array"))
            continue
        good: list[dict[str, Any]] = []
        try:
            for item in items:
                good.append(contract.validate_reading(item, station))
        except ContractError as exc:
            # One bad reading spoils its message: the producer is broken, keep the evidence whole.
            dead.append(DeadLetter(topic, payload, str(exc)))
            continue
        readings.extend(good)
    return to_columns(readings), dead


def to_columns(readings: list[dict[str, Any]]) -> Batch:
    n = len(readings)
    nan = np.nan
    values = {}
    for name in MEASURED:
        col = np.fromiter(
            ((nan if (v := r.get(name)) is None else v) for r in readings), dtype=np.float64, count=n
        )
        if not np.all(np.isnan(col)):
            values[name] = col
    # Window extremes: {"min": {"pm25_atm": 9}} -> column "pm25_atm_min".
    for stat in contract.STAT_KEYS:
        present = {k for r in readings if (d := r.get(stat)) for k in d}
        for name in sorted(present):
            values[f"{name}_{stat}"] = np.fromiter(
                (r.get(stat, {}).get(name, nan) for r in readings), dtype=np.float64, count=n
            )
    return Batch(
        station=np.array([r["station"] for r in readings], dtype=object),
        sensor=np.array([r["sensor"] for r in readings], dtype=object),
        channel=np.array([r["channel"] for r in readings], dtype=object),
        ints={k: np.fromiter((r[k] for r in readings), dtype=np.int64, count=n) for k in INTEGERS},
        synced=np.fromiter((r["synced"] for r in readings), dtype=bool, count=n),
        values=values,
    )
