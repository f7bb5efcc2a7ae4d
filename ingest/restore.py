"""Restoring the quality history on start: the last windows of every series, read back
from InfluxDB into a :class:`~ingest.clean.Cleaner` before the first message.

(Was ``ingest/history.py``; renamed for what it does, and so as not to be confused with
the in-memory per-series history, :mod:`ingest.series`.)

Flat-line, spike and A/B disagreement judge a window against the windows before it
(:class:`ingest.series.SeriesHistory`). That history lives in the process; without
this, every restart (an upgrade, a crash, a reboot) would leave the first windows of
every station unjudged: a stuck sensor would be reported clean for another ten
windows. The database already holds exactly what is needed: each series' newest
windows with the ``qc`` they were given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from civicair import influxql
from civicair.influx import Influx, series
from civicair.schema import storage
from ingest.clean import Cleaner
from ingest.lineprotocol import MEASUREMENT

log = logging.getLogger(__name__)

FIELDS = ("pm25_cf1", "pm25_atm", "qc")


@dataclass(frozen=True, slots=True)
class Restored:
    windows: int
    series: int


def query(depth: int, lookback_s: int, measurement: str = MEASUREMENT) -> str:
    """The newest ``depth`` windows of every series seen in the last ``lookback_s``."""
    return influxql.newest_windows(measurement, FIELDS, depth, lookback_s)


def _column(rows: list[list], index: int | None, fill: float) -> np.ndarray:
    if index is None:
        return np.full(len(rows), fill)
    return np.array([fill if r[index] is None else r[index] for r in rows], dtype=np.float64)


def restore(influx: Influx, cleaner: Cleaner, lookback_s: int) -> Restored:
    """Fill ``cleaner``'s (empty) history from the database. Raises
    :class:`civicair.influx.InfluxUnavailable` / ``InfluxRejected`` when it cannot."""
    depth = cleaner.settings.history_depth
    results = influx.query(query(depth, lookback_s))
    found = series(results[0]) if results else []
    station, sensor, channel, ts, cf1, atm, qc = [], [], [], [], [], [], []
    for s in found:
        tags, columns, rows = s.get("tags") or {}, s["columns"], s.get("values") or []
        if not rows or not all(tags.get(t) for t in storage.TAGS):
            continue
        at = {name: i for i, name in enumerate(columns)}
        station.append(np.full(len(rows), tags["station"], dtype=object))
        sensor.append(np.full(len(rows), tags["sensor"], dtype=object))
        channel.append(np.full(len(rows), tags["channel"], dtype=object))
        ts.append(_column(rows, at["time"], 0).astype(np.int64))
        cf1.append(_column(rows, at.get("pm25_cf1"), np.nan))
        atm.append(_column(rows, at.get("pm25_atm"), np.nan))
        qc.append(_column(rows, at.get("qc"), 0).astype(np.int64))
    if not station:
        return Restored(0, 0)
    windows = cleaner.restore(*(np.concatenate(c) for c in (station, sensor, channel)),
                              *(np.concatenate(c) for c in (ts, cf1, atm, qc)))
    return Restored(windows, len(cleaner.history))
