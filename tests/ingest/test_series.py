"""The per-series history across batches (ingest/series.py), with hand-computed cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from civicair.schema.qc import Flag
from ingest.grouping import factorize
from ingest.kernels import ab_disagreement, flat_line, hampel, high_humidity, low_coverage, out_of_range
from ingest.quality import QualitySettings
from ingest.series import SeriesHistory

NAN = np.nan


def obj(*values: str) -> np.ndarray:
    return np.array(values, dtype=object)


SETTINGS = QualitySettings(flat_line_windows=3, hampel_window=3, hampel_min_periods=3,
                           hampel_min_deviation=0.0)


def assess(history, rows, settings=SETTINGS):
    """rows: (station, sensor, channel, ts, value)."""
    station, sensor, channel = (obj(*(r[i] for r in rows)) for i in range(3))
    ts = np.array([r[3] for r in rows], dtype=np.int64)
    value = np.array([r[4] for r in rows], dtype=np.float64)
    groups = factorize(station, sensor, channel)
    return history.assess(groups, station, sensor, channel, ts, value, settings)


def test_flat_line_across_two_batches():
    history = SeriesHistory(SETTINGS.history_depth)
    first = assess(history, [("s1", "pms5003", "a", 60, 7.0), ("s1", "pms5003", "a", 120, 7.0)])
    assert first.flat_line.tolist() == [False, False]
    second = assess(history, [("s1", "pms5003", "a", 180, 7.0), ("s1", "pms5003", "a", 240, 8.0)])
    assert second.flat_line.tolist() == [True, False]


def test_flat_line_history_is_kept_per_series():
    history = SeriesHistory(SETTINGS.history_depth)
    assess(history, [("s1", "pms5003", "a", 60, 7.0), ("s1", "pms5003", "a", 120, 7.0),
                     ("s2", "pms5003", "a", 60, 7.0)])
    out = assess(history, [("s2", "pms5003", "a", 180, 7.0), ("s1", "pms5003", "b", 180, 7.0),
                           ("s1", "pms5003", "a", 180, 7.0)])
    assert out.flat_line.tolist() == [False, False, True]
    assert len(history) == 3


def test_spike_uses_the_previous_batch_as_its_window():
    history = SeriesHistory(SETTINGS.history_depth)
    assess(history, [("s1", "sds011", "a", t, v) for t, v in ((60, 10.0), (120, 12.0), (180, 11.0))])
    # past 10 12 11 -> median 11, MAD 1, threshold 4.4478
    out = assess(history, [("s1", "sds011", "a", 240, 15.5)])
    assert out.spike.tolist() == [True]
    out = assess(SeriesHistory(3), [("s1", "sds011", "a", 240, 15.5)])  # no history: no verdict
    assert out.spike.tolist() == [False]


def test_ab_pairs_within_a_batch_flag_both_channels():
    history = SeriesHistory(SETTINGS.history_depth)
    out = assess(history, [("s1", "pms5003", "a", 60, 2.0), ("s1", "pms5003", "b", 60, 8.0),
                           ("s1", "pms5003", "a", 120, 10.0), ("s1", "pms5003", "b", 120, 16.0),
                           ("s2", "pms5003", "b", 60, 50.0)])
    assert out.ab_disagreement.tolist() == [True, True, False, False, False]


def test_ab_pairs_with_the_partner_from_an_earlier_batch():
    history = SeriesHistory(SETTINGS.history_depth)
    assess(history, [("s1", "pms5003", "a", 60, 2.0)])
    out = assess(history, [("s1", "pms5003", "b", 60, 8.0), ("s1", "pms5003", "b", 120, 8.0)])
    assert out.ab_disagreement.tolist() == [True, False]


def test_a_written_partner_is_amended_with_its_recorded_qc_plus_the_ab_bit():
    history = SeriesHistory(SETTINGS.history_depth)
    first = assess(history, [("s1", "pms5003", "a", 60, 2.0), ("s1", "pms5003", "a", 120, 9.0)])
    assert first.amend_slot.size == 0
    history.record_qc(first, np.array([Flag.UNCORRECTED, 0]))
    out = assess(history, [("s1", "pms5003", "b", 60, 8.0), ("s1", "pms5003", "b", 120, 9.5)])
    assert out.ab_disagreement.tolist() == [True, False]
    assert out.amend_ts.tolist() == [60]
    assert out.amend_qc.tolist() == [Flag.UNCORRECTED | Flag.AB_DISAGREEMENT]
    station, sensor, channel = history.series_of(out.amend_slot)
    assert (station.tolist(), sensor.tolist(), channel.tolist()) == (["s1"], ["pms5003"], ["a"])
    # Amended once: a redelivery of b, or a later batch, asks for nothing more.
    again = assess(history, [("s1", "pms5003", "b", 60, 8.0)])
    assert again.ab_disagreement.tolist() == [True] and again.amend_slot.size == 0


def test_a_window_whose_qc_was_never_recorded_is_not_amended():
    """An amendment writes the whole qc: without the recorded value it would wipe bits."""
    history = SeriesHistory(SETTINGS.history_depth)
    assess(history, [("s1", "pms5003", "a", 60, 2.0)])  # no record_qc
    out = assess(history, [("s1", "pms5003", "b", 60, 8.0)])
    assert out.ab_disagreement.tolist() == [True] and out.amend_slot.size == 0


def test_ab_pairs_channels_of_the_same_station_only_at_the_same_ts():
    history = SeriesHistory(SETTINGS.history_depth)
    out = assess(history, [("s1", "pms5003", "a", 60, 2.0), ("s2", "pms5003", "b", 60, 8.0),
                           ("s1", "pms5003", "b", 120, 8.0)])
    assert not out.ab_disagreement.any()


def test_a_redelivered_reading_is_judged_like_its_first_copy():
    history = SeriesHistory(SETTINGS.history_depth)
    rows = [("s1", "sds011", "a", t, v) for t, v in ((60, 10.0), (120, 12.0), (180, 11.0),
                                                     (240, 15.5))]
    first = assess(history, rows)
    assert first.spike.tolist() == [False, False, False, True]
    again = assess(history, rows[-1:])  # QoS 1 redelivery of the last one
    assert again.spike.tolist() == [True]
    twice = assess(history, [rows[-1], rows[-1]])  # and twice in one batch
    assert twice.spike.tolist() == [True, True]


def test_a_late_reading_is_judged_against_the_windows_before_it():
    history = SeriesHistory(SETTINGS.history_depth)
    settings = QualitySettings(flat_line_windows=3, hampel_window=3, hampel_min_periods=2,
                               hampel_min_deviation=0.0)
    assess(history, [("s1", "sds011", "a", t, v) for t, v in ((60, 10.0), (120, 12.0),
                                                             (180, 11.0), (300, 30.0))], settings)
    # Stored now: 120 → 12, 180 → 11, 300 → 30. 240 arrives late: its past is 12 and 11
    # (median 11.5, MAD 0.5, threshold 2.2239), not … 11, 30 (median 12, MAD 1, 4.4478).
    out = assess(history, [("s1", "sds011", "a", 240, 15.5)], settings)
    assert out.spike.tolist() == [True]


def test_a_redelivery_keeps_its_verdict_after_its_past_is_evicted():
    history = SeriesHistory(SETTINGS.history_depth)
    rows = [("s1", "sds011", "a", t, v) for t, v in ((60, 10.0), (120, 12.0), (180, 11.0))]
    assess(history, rows)
    assert assess(history, [("s1", "sds011", "a", 240, 15.5)]).spike.tolist() == [True]
    assess(history, [("s1", "sds011", "a", 300, 11.0), ("s1", "sds011", "a", 360, 11.0)])
    # 240's past (60-180) is gone from the 3 stored windows; its verdict is not
    assert assess(history, [("s1", "sds011", "a", 240, 15.5)]).spike.tolist() == [True]


def test_history_depth_is_what_the_flags_look_back_at():
    assert SETTINGS.history_depth == 3
    assert QualitySettings().history_depth == 9  # flat line 10 -> 9 before; Hampel 7


def test_history_keeps_only_depth_windows_per_series():
    history = SeriesHistory(3)
    assess(history, [("s1", "sds011", "a", 60 * i, float(i)) for i in range(1, 11)])
    assert history._len[0] == 3
    assert history._ts[0].tolist() == [480, 540, 600]


def test_history_refuses_settings_that_need_more_depth():
    with pytest.raises(ValueError, match="history"):
        assess(SeriesHistory(2), [("s1", "sds011", "a", 60, 1.0)])


def test_history_of_an_empty_batch():
    out = assess(SeriesHistory(SETTINGS.history_depth), [])
    assert out.flat_line.shape == out.spike.shape == out.ab_disagreement.shape == (0,)


def test_history_handles_many_series_and_growth():
    history = SeriesHistory(SETTINGS.history_depth)
    rows = [(f"s{i}", "pms5003", "ab"[i % 2], 60, float(i)) for i in range(500)]
    out = assess(history, rows)
    assert out.flat_line.shape == (500,)
    assert len(history) == 500


def test_kernels_never_warn_on_missing_values():
    values = np.array([NAN, 1.0, NAN, NAN, 2.0, NAN, NAN, NAN, NAN])
    series = np.zeros(values.size, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_of_range(values, 1000.0)
        flat_line(values, series, 2)
        hampel(values, series, window=3, min_periods=1)
        high_humidity(values)
        ab_disagreement(values, values[::-1])
        low_coverage(values, values, values)
        assess(SeriesHistory(3), [("s1", "pms5003", "ab"[i % 2], 60 * (i // 2), v)
                                  for i, v in enumerate(values)])
