"""Rollup dirty marks: which (station, hour) a batch touched (docs/rollups.md).

The ingest appends them to the batch's own ``/write``, so a reading is never stored
without its mark (InfluxDB writes a payload's points or reports which it refused; the
writer retries the whole payload). The rollup worker reads the marks newer than its
cursor and recomputes those hours and their days. Pure numpy: no I/O, no clock.
"""

from __future__ import annotations

import numpy as np

from civicair.schema import storage
from ingest.columns import Batch

HOUR_S = 3600


def dirty_marks(station: np.ndarray, ts: np.ndarray, written: int) -> bytes:
    """One ``rollup_dirty`` line per distinct (station, hour of ``ts``), stamped ``written``.

    Parameters
    ----------
    station : ndarray of str
        Station ids (already checked against the contract's pattern: nothing to escape).
    ts : ndarray of int64
        Reading times [s since the UTC epoch]; late readings days old make their own marks.
    written : int
        The ingest's clock at the write [s]: the marks' time, which the worker's cursor follows.
    """
    if len(ts) == 0:
        return b""
    names, code = np.unique(station, return_inverse=True)
    # One int64 key per (station, hour): hour numbers since 1970 stay far below 2**40.
    keys = np.unique(code.astype(np.int64).ravel() << 40 | np.asarray(ts, dtype=np.int64) // HOUR_S)
    hours = (keys & ((1 << 40) - 1)) * HOUR_S
    lags = (written // HOUR_S * HOUR_S - hours) // HOUR_S
    template = f"{storage.ROLLUP_DIRTY},station=%s,lag=%d hour=%di {int(written)}\n"
    return "".join(map(template.__mod__, zip(names[keys >> 40].tolist(), lags.tolist(), hours.tolist(),
                                             strict=True))).encode()


def batch_marks(columns: Batch, written: int) -> bytes:
    """The marks of a cleaned batch: its readings and the earlier points it amended."""
    station, ts = columns.station, columns.ints["ts"]
    if columns.amended is not None and len(columns.amended):
        station = np.concatenate([station, columns.amended.station])
        ts = np.concatenate([ts, columns.amended.ts])
    return dirty_marks(station, ts, written)
