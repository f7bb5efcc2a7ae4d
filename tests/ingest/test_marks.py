"""Dirty marks of a batch (pure numpy), against the schema's reference line."""

from __future__ import annotations

import numpy as np

from civicair.schema import storage
from ingest.marks import dirty_marks

HOUR = 3600
NOW = 1_767_225_600 + 5 * HOUR + 1800  # 2026-01-01T05:30:00Z


def test_one_mark_per_station_and_hour_late_readings_included():
    station = np.array(["b", "a", "b", "a", "a"])
    ts = np.array([NOW - 10, NOW - 20, NOW - 3 * 86400, NOW - 30, NOW - HOUR])
    got = dirty_marks(station, ts, NOW).decode().splitlines(keepends=True)
    hour = NOW // HOUR * HOUR
    want = {storage.dirty_line(s, h, NOW).decode() for s, h in
            [("a", hour), ("a", hour - HOUR), ("b", hour), ("b", hour - 72 * HOUR)]}
    assert len(got) == 4 and set(got) == want
    assert "lag=72 hour=" in "".join(got)


def test_no_readings_no_marks():
    assert dirty_marks(np.array([], dtype=str), np.array([], dtype=np.int64), NOW) == b""
