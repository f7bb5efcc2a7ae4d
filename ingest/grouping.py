"""Grouping readings by their string keys, and sorts on packed integer keys.

Owns :func:`factorize` (exact dense codes of (station, sensor, channel)-like string
columns, without sorting strings), :func:`lookup` (a per-name table consulted once per
distinct name) and the integer sorts the series history relies on: :func:`pack_keys`,
:func:`packed_order` (``np.lexsort`` as one int64 argsort) and :func:`slot_ts_order`
(a radix sort when the rows already come in time order).

Pure numpy and dicts: no I/O, no state, nothing about what the keys mean.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Groups:
    """Readings grouped by equal keys: ``codes[i]`` is reading i's group, ``first[g]``
    the index of the first reading of group g."""

    codes: np.ndarray
    first: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def _column_codes(column: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense codes of one string column, in order of first appearance, and their count.

    numpy cannot hash object strings, and sorting them costs about 0.8 s a million.
    A dict keyed by the strings is exact and runs as a C loop (``map`` over a
    ``defaultdict``'s ``__getitem__``): no Python bytecode runs per reading.
    """
    seen: defaultdict[object, int] = defaultdict(itertools.count().__next__)
    codes = np.fromiter(map(seen.__getitem__, column), dtype=np.int64, count=column.size)
    return codes, len(seen)


#: Leading rows of a column looked at to choose how to code it.
_SAMPLE_ROWS = 4096


def _few_codes(column: np.ndarray) -> tuple[np.ndarray, int] | None:
    """:func:`_column_codes` of a column holding at most two distinct strings (a channel
    column), by elementwise comparison; None when the column holds more or other values."""
    head = list(dict.fromkeys(column[:_SAMPLE_ROWS].tolist()))
    if not 1 <= len(head) <= 2 or any(type(v) is not str for v in head):
        return None
    first = column == head[0]
    if len(head) == 1:
        return (np.zeros(column.size, dtype=np.int64), 1) if first.all() else None
    second = column == head[1]
    if not (first | second).all():
        return None
    return second.astype(np.int64), 2


def _dependent_codes(column: np.ndarray, known: np.ndarray, span: int) -> tuple[np.ndarray, int] | None:
    """:func:`_column_codes` of a column whose value is the same in every row of each group
    ``known`` (codes below ``span``) makes, from one value per group; None when it is not.

    One elementwise comparison with each group's first row verifies the premise; the
    codes keep the order of first appearance, which is always a group's first row.
    """
    size = column.size
    first = np.full(span, size, dtype=np.intp)
    np.minimum.at(first, known, np.arange(size))
    if not (column == column[first[known]]).all():
        return None
    group_rows = np.sort(first[first < size])
    codes, count = _column_codes(column[group_rows])
    per_group = np.zeros(span, dtype=np.int64)
    per_group[known[group_rows]] = codes
    return per_group[known], count


def _columns_codes(columns: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, int]]:
    """:func:`_column_codes` of each column, the cheapest exact way for each.

    A two-valued column (the channel) is coded by comparison; of the other columns
    the most varied (the station) goes through the dict, and a less varied one (the
    sensor, fixed per station and channel) is coded per group of the columns coded
    already when a sample of the leading rows suggests it is fixed per group.
    """
    coded: dict[int, tuple[np.ndarray, int]] = {}
    rest = []
    for i, column in enumerate(columns):
        few = _few_codes(column) if column.size > _SAMPLE_ROWS else None
        if few is None:
            rest.append(i)
        else:
            coded[i] = few
    head_distinct = {i: len(dict.fromkeys(columns[i][:_SAMPLE_ROWS].tolist())) for i in rest}
    for i in sorted(rest, key=lambda i: -head_distinct[i]):
        got = None
        if coded and columns[i].size > _SAMPLE_ROWS:
            known, span = np.zeros(columns[i].size, dtype=np.int64), 1
            for codes, count in coded.values():
                known, span = known * count + codes, span * count
            head = known[:_SAMPLE_ROWS]
            if span <= columns[i].size and head_distinct[i] <= np.unique(head).size:
                if _dependent_codes(columns[i][:_SAMPLE_ROWS], head, span) is not None:
                    got = _dependent_codes(columns[i], known, span)
        coded[i] = got if got is not None else _column_codes(columns[i])
    return [coded[i] for i in range(len(columns))]


def factorize(*columns: np.ndarray) -> Groups:
    """Group the rows of equal-length string columns by equal values (exactly).

    Each column gets dense codes in order of first appearance (:func:`_column_codes`,
    or the same codes found cheaper by :func:`_columns_codes`); their mixed-radix
    combination is relabelled densely (or by one integer sort when the product of
    the cardinalities is large).
    """
    if not columns:
        raise TypeError("factorize() needs at least one column")
    size = columns[0].size
    combined = np.zeros(size, dtype=np.int64)
    span = 1
    for codes, count in _columns_codes(columns):
        if span * count >= 1 << 63:  # relabel before the product could overflow int64
            _, combined = np.unique(combined, return_inverse=True)
            combined = combined.reshape(-1).astype(np.int64)
            span = int(combined.max()) + 1
        combined = combined * count + codes
        span *= count
    if span <= max(4 * size, 1 << 16):
        present = np.zeros(span, dtype=bool)
        present[combined] = True
        relabel = np.cumsum(present) - 1
        group = relabel[combined]
        groups = int(present.sum())
    else:
        _, inverse = np.unique(combined, return_inverse=True)
        group = inverse.reshape(-1).astype(np.int64)
        groups = int(group.max()) + 1 if size else 0
    first = np.full(groups, size, dtype=np.int64)
    np.minimum.at(first, group, np.arange(size))
    return Groups(group.astype(np.intp), first.astype(np.intp))


def lookup(column: np.ndarray, table: Mapping[str, float], default: float = np.nan,
           groups: Groups | None = None) -> np.ndarray:
    """Per-row ``table[column[i]]`` as float64, ``default`` for names not in the table.

    The table is consulted once per distinct name (``groups`` may pass a grouping of
    ``column`` already made), not once per row.
    """
    groups = factorize(column) if groups is None else groups
    names = column[groups.first]
    per_group = np.array([table.get(name, default) for name in names.tolist()], dtype=np.float64)
    return per_group[groups.codes]


def pack_keys(*keys: np.ndarray) -> np.ndarray | None:
    """Integer keys packed into one int64 that sorts like ``np.lexsort(keys)`` (last key
    most significant, each offset by its minimum), or None when they need over 63 bits."""
    shift, packed = 0, np.zeros(keys[0].size, dtype=np.int64)
    for key in keys:
        lo = int(key.min())
        bits = (int(key.max()) - lo).bit_length()
        if shift + bits > 63:
            return None
        packed |= (key.astype(np.int64) - lo) << shift
        shift += bits
    return packed


def packed_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort(keys)`` as one int64 argsort when the keys fit (about 10× faster)."""
    packed = pack_keys(*keys)
    return np.lexsort(keys) if packed is None else np.argsort(packed)


def slot_ts_order(slot: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
    """``np.lexsort((arange, ts, slot))`` by one radix sort of the slots, when each
    slot's rows already come in ``ts`` order (the usual batch), else None.

    That is the order of ``packed_order(arrival, ts, slot)`` in
    :meth:`ingest.series.SeriesHistory.assess`:
    arrival grows with the position (stored windows, all 0, come first and are unique
    per slot and ts)."""
    if slot.size == 0 or int(slot.max()) >= 1 << 16 or int(slot.min()) < 0:
        return None
    order = np.argsort(slot.astype(np.uint16), kind="stable")  # a radix sort
    s_slot, s_ts = slot[order], ts[order]
    if ((s_ts[1:] >= s_ts[:-1]) | (s_slot[1:] != s_slot[:-1])).all():
        return order
    return None
