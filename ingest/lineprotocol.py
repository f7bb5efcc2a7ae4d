"""InfluxDB line protocol for a whole :class:`~ingest.columns.Batch`.

One line per reading::

    pm,station=<s>,sensor=<m>,channel=<c> <field>=<float>,…,n=<int>i,… <ts>

Tag values are escaped (comma, space, equals sign, backslash); NaN fields are
left out (line protocol has no null); integer fields carry the ``i`` suffix;
floats are written as ``repr`` writes them (the shortest text that reads back to
the same float); timestamps are epoch seconds (write with ``precision=s``).

How, and why not in numpy alone: the batch becomes one ``%`` template with one
slot per field (``pm25_atm=%r,``, ``n=%di,``, …) and one Python list per column
(``ndarray.tolist()``); ``map(template.__mod__, zip(*columns))`` then formats
every line in C, with no Python bytecode per reading. Whatever can be decided per
column is decided once per column with numpy: which columns have gaps (only these
get a preformatted cell per reading, ``""`` where NaN, so that a line never holds
an empty field), and tag and string values are escaped once per distinct value.
Building the lines from numpy string arrays instead (``np.strings.add`` per field,
as this module did until 2026-11) made a new array of every line so far for every
field: 22-25 µs a reading of the 14 fields a PMS5003 station sends, 49-56 µs with
its window extremes, against 4-8 and 13-14 µs here, most of it ``repr`` of the
floats (about 0.2 µs each). Joining preformatted ``name=value`` cells with
``",".join`` took 7-9 µs. (5,000-reading batches; docs/performance.md, "Ingest".)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from civicair.schema import storage
from ingest.columns import Amendments, Batch

MEASUREMENT = storage.PM

_TAG_SPECIALS = ("\\", ",", " ", "=")
_SYNCED = ("synced=false", "synced=true")


def escape_tag(values: np.ndarray) -> np.ndarray:
    """Tag values with comma, space, equals sign and backslash escaped."""
    return np.array(_escaped(values, _escape_tag_text), dtype=str)


def escape_string_field(values: np.ndarray) -> np.ndarray:
    """String field values with double quote and backslash escaped (quotes not added)."""
    return np.array(_escaped(values, _escape_string_text), dtype=str)


def _escape_tag_text(text: str) -> str:
    for ch in _TAG_SPECIALS:
        text = text.replace(ch, "\\" + ch)
    return text


_escape_string_text = storage.escape_string  # the schema's one rule for string fields


def _escaped(values: np.ndarray, escape_text: Callable[[str], str]) -> list[str]:
    """``values`` as escaped text, one per element; each distinct value escaped once.

    The text of a value is numpy's (``astype(str)``: a str as it is, without trailing
    NULs, which a numpy str cannot hold; ``True``; ``None``). Not ``np.strings.replace``:
    in numpy 2.4 it truncates a result when the whole value is replaced (``","``
    became ``"\\"``, which escapes the next character instead).
    """
    items = values.tolist()
    if set(map(type, items)) != {str}:
        items = values.astype(str).tolist()
    escaped = {v: escape_text(v.rstrip("\0")) for v in set(items)}
    return list(map(escaped.__getitem__, items))


def _slot(name: str) -> str:
    return name.replace("%", "%%")  # a literal in the % template


def _float_column(name: str, col: np.ndarray) -> tuple[str, list[Any]] | None:
    """Template slot and per-reading arguments of a float field; None if all NaN."""
    gaps = np.isnan(col)
    if not gaps.any() and col.dtype == np.float64:
        # repr of a Python float is numpy's str of a float64: the shortest round trip.
        return f"{_slot(name)}=%r,", col.tolist()
    if gaps.all():
        return None
    if col.dtype == np.float64:
        texts = np.array(list(map(f"{_slot(name)}=%r,".__mod__, col.tolist())), dtype=object)
    else:  # another float width keeps numpy's own shortest text for that width
        texts = np.strings.add(np.strings.add(f"{name}=", col.astype(str)), ",").astype(object)
    texts[gaps] = ""
    return "%s", texts.tolist()


def _optional_string_cells(name: str, col: np.ndarray) -> list[str]:
    """``name="value",`` per reading, ``""`` where the value is None (no empty field)."""
    items = col.tolist()
    escaped = {v: f'{name}="{_escape_string_text(v)}",' for v in set(items) if v is not None}
    escaped[None] = ""
    return list(map(escaped.__getitem__, items))


def _series_slot(measurement: str) -> str:
    """The template of a line's series key (measurement and tags) and the space after it."""
    return f"{_slot(measurement)},station=%s,sensor=%s,channel=%s "


def _series_columns(station: np.ndarray, sensor: np.ndarray, channel: np.ndarray) -> list[list[Any]]:
    return [_escaped(tags, _escape_tag_text) for tags in (station, sensor, channel)]


def encode(batch: Batch, measurement: str = MEASUREMENT) -> bytes:
    if len(batch) == 0:
        return b""
    slots = [_series_slot(measurement)]
    columns: list[list[Any]] = _series_columns(batch.station, batch.sensor, batch.channel)
    fields: list[tuple[str, np.ndarray]] = [*batch.values.items(), *batch.derived.items()]
    for name, col in fields:
        if col.dtype.kind == "f":
            if (field := _float_column(name, col)) is not None:
                slots.append(field[0])
                columns.append(field[1])
        elif col.dtype.kind in "iu":
            slots.append(f"{_slot(name)}=%di,")
            columns.append(col.tolist())
        else:  # string field
            slots.append(f'{_slot(name)}="%s",')
            columns.append(_escaped(col, _escape_string_text))
    if batch.climate is not None:
        slots.append("%s")
        columns.append(_optional_string_cells("climate", batch.climate))
    for name in ("n", "seq", "boot", "window"):
        slots.append(f"{name}=%di,")
        columns.append(batch.ints[name].tolist())
    slots.append("%s %d\n")
    columns.append(list(map(_SYNCED.__getitem__, batch.synced.tolist())))
    columns.append(batch.ints["ts"].tolist())
    template = "".join(slots)
    return "".join(map(template.__mod__, zip(*columns, strict=True))).encode()


def encode_amendments(amended: Amendments, measurement: str = MEASUREMENT) -> bytes:
    """``qc``-only lines for points already written: InfluxDB merges a point's fields into
    the stored point of the same series and timestamp, so only ``qc`` changes."""
    if len(amended) == 0:
        return b""
    template = _series_slot(measurement) + "qc=%di %d\n"
    columns = [*_series_columns(amended.station, amended.sensor, amended.channel), amended.qc.tolist(),
               amended.ts.tolist()]
    return "".join(map(template.__mod__, zip(*columns, strict=True))).encode()
