"""Vectorised InfluxDB line protocol for a whole :class:`~ingest.columns.Batch`.

One line per reading::

    pm,station=<s>,sensor=<m>,channel=<c> <field>=<float>,…,n=<int>i,… <ts>

Tag values are escaped (comma, space, equals sign, backslash); NaN fields are
left out (line protocol has no null); integer fields carry the ``i`` suffix;
timestamps are epoch seconds (write with ``precision=s``). Each column is
formatted in one numpy call; no per-reading Python loop builds a line.
"""

from __future__ import annotations

import numpy as np

from ingest.columns import Batch

MEASUREMENT = "pm"


def escape_tag(values: np.ndarray) -> np.ndarray:
    s = values.astype(str)
    for ch in ("\\", ",", " ", "="):
        s = np.strings.replace(s, ch, "\\" + ch)
    return s


def escape_string_field(values: np.ndarray) -> np.ndarray:
    s = values.astype(str)
    s = np.strings.replace(s, "\\", "\\\\")
    return np.strings.replace(s, '"', '\\"')


def _float_field(name: str, col: np.ndarray) -> np.ndarray:
    formatted = np.strings.add(f",{name}=", col.astype(str))
    return np.where(np.isnan(col), "", formatted)


def _int_field(name: str, col: np.ndarray) -> np.ndarray:
    return np.strings.add(np.strings.add(f",{name}=", col.astype(str)), "i")


def encode(batch: Batch, measurement: str = MEASUREMENT) -> bytes:
    if len(batch) == 0:
        return b""
    head = np.strings.add(f"{measurement},station=", escape_tag(batch.station))
    head = np.strings.add(np.strings.add(head, ",sensor="), escape_tag(batch.sensor))
    head = np.strings.add(np.strings.add(head, ",channel="), escape_tag(batch.channel))

    fields = np.full(len(batch), "", dtype=object).astype(str)
    for name, col in batch.values.items():
        fields = np.strings.add(fields, _float_field(name, col))
    for name, col in batch.derived.items():
        if col.dtype.kind == "f":
            fields = np.strings.add(fields, _float_field(name, col))
        elif col.dtype.kind in "iu":
            fields = np.strings.add(fields, _int_field(name, col))
        else:  # string field
            quoted = np.strings.add(np.strings.add(f',{name}="', escape_string_field(col)), '"')
            fields = np.strings.add(fields, quoted)
    for name in ("n", "seq", "boot", "window"):
        fields = np.strings.add(fields, _int_field(name, batch.ints[name]))
    fields = np.strings.add(fields, np.where(batch.synced, ",synced=true", ",synced=false"))

    lines = np.strings.add(np.strings.add(head, " "), np.strings.slice(fields, 1, None))
    lines = np.strings.add(np.strings.add(lines, " "), batch.ints["ts"].astype(str))
    return ("\n".join(lines.tolist()) + "\n").encode()
