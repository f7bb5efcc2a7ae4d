"""Quality-flag kernels (ingest/kernels.py) and the qc bitmask, with hand-computed cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from civicair.schema.qc import Flag
from civicair.schema.sensors import FRAME_PERIOD_S, RANGE_MAX_UG_M3, RH_RANGE_PCT, TEMP_RANGE_C
from ingest import kernels
from ingest.kernels import (
    ab_disagreement,
    clock_unsynced,
    flags,
    flat_line,
    future_timestamp,
    hampel,
    high_humidity,
    low_coverage,
    out_of_range,
)

NAN = np.nan


# -- the bits ---------------------------------------------------------------------------


def test_flag_values_are_the_documented_bits():
    # Stored in InfluxDB: renumbering a bit would silently change old data's meaning.
    assert {f.name: f.value for f in Flag} == {
        "OUT_OF_RANGE": 1, "FLAT_LINE": 2, "SPIKE": 4, "HIGH_HUMIDITY": 8,
        "CLOCK_UNSYNCED": 16, "FUTURE_TIMESTAMP": 32, "AB_DISAGREEMENT": 64,
        "LOW_COVERAGE": 128, "UNCORRECTED": 256, "SENSOR_FAULT": 512,
    }


@pytest.mark.parametrize("bit", list(Flag), ids=lambda f: f.name.lower())
def test_flags_sets_each_bit_alone_and_only_where_its_mask_is_true(bit):
    qc = flags(**{bit.name.lower(): np.array([True, False])})
    assert qc.dtype == np.int64
    assert qc.tolist() == [bit.value, 0]


def test_flags_combines_masks_per_reading():
    qc = flags(out_of_range=np.array([True, False, True]),
               spike=np.array([True, False, False]),
               uncorrected=np.array([False, False, True]))
    assert qc.tolist() == [1 | 4, 0, 1 | 256]


def test_flags_keeps_the_shape_of_its_masks():
    assert flags(spike=np.zeros((2, 3), dtype=bool)).shape == (2, 3)


def test_flags_refuses_unknown_names_and_mismatched_shapes():
    with pytest.raises(TypeError, match="unknown flag"):
        flags(sparkle=np.array([True]))
    with pytest.raises(ValueError, match="shape"):
        flags(spike=np.array([True]), flat_line=np.array([True, False]))
    with pytest.raises(TypeError):
        flags()


# -- out of range ---------------------------------------------------------------------------


def test_out_of_range_flags_negative_and_above_the_maximum_but_not_the_edges_or_nan():
    values = np.array([-0.1, 0.0, 500.0, 1000.0, 1000.1, NAN])
    assert out_of_range(values, 1000.0).tolist() == [True, False, False, False, True, False]


def test_out_of_range_takes_a_per_reading_upper_limit():
    values = np.array([999.95, 999.95])
    upper = np.array([RANGE_MAX_UG_M3["sds011"], RANGE_MAX_UG_M3["pms5003"]])
    assert out_of_range(values, upper).tolist() == [True, False]


def test_out_of_range_takes_a_lower_limit_and_judges_huge_values_without_warning():
    lo, hi = TEMP_RANGE_C
    values = np.array([-40.1, -40.0, 125.0, 125.1, NAN, -1e308, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert out_of_range(values, hi, lower=lo).tolist() == [True, False, False, True, False, True, True]
        assert out_of_range(np.array([-1e308, 0.0, 100.0, 1e308]), RH_RANGE_PCT[1],
                            lower=RH_RANGE_PCT[0]).tolist() == [True, False, False, True]


def test_climate_ranges_are_the_sht3x_sht4x_specified_ranges():
    # Sensirion "Datasheet SHT3x-DIS", "Datasheet SHT4x": 0–100 %RH, −40–125 °C.
    assert RH_RANGE_PCT == (0.0, 100.0) and TEMP_RANGE_C == (-40.0, 125.0)


def test_sensor_tables_cover_every_contract_sensor():
    from civicair.schema.contract import SENSORS

    assert set(RANGE_MAX_UG_M3) == set(SENSORS) == set(FRAME_PERIOD_S)


# -- flat line --------------------------------------------------------------------------------


def test_flat_line_flags_the_windows_that_complete_a_run_of_n():
    values = np.array([1.0, 2.0, 2.0, 2.0, 2.0, 3.0])
    series = np.zeros(6, dtype=int)
    assert flat_line(values, series, 3).tolist() == [False, False, False, True, True, False]


def test_flat_line_runs_do_not_cross_series_and_nan_breaks_them():
    values = np.array([5.0, 5.0, 5.0, 5.0, NAN, 5.0, 5.0])
    series = np.array([0, 0, 1, 1, 1, 1, 1])
    # series 0: [5, 5]; series 1: [5, 5, NaN, 5, 5] -> no run of 3 anywhere
    assert not flat_line(values, series, 3).any()
    assert flat_line(values, series, 2).tolist() == [False, True, False, True, False, False, True]


def test_flat_line_needs_at_least_two_windows():
    with pytest.raises(ValueError):
        flat_line(np.array([1.0]), np.array([0]), 1)


def test_flat_line_of_nothing_is_nothing():
    assert flat_line(np.zeros(0), np.zeros(0, dtype=int), 3).shape == (0,)


# -- spike (Hampel) ----------------------------------------------------------------------------

# Seven windows before the one judged. By hand: sorted 10 10 11 11 12 12 13 -> median 11;
# |x - 11| = 1 1 0 2 1 0 1 -> sorted 0 0 1 1 1 1 2 -> MAD 1;
# threshold 3 * 1.4826 * 1 = 4.4478 µg/m³.
PAST = [10.0, 12.0, 11.0, 13.0, 12.0, 11.0, 10.0]


@pytest.mark.parametrize("x, spike", [(15.5, True), (15.4, False), (6.5, True), (6.6, False),
                                      (11.0, False)])
def test_hampel_against_a_hand_computed_median_and_mad(x, spike):
    values = np.array([*PAST, x])
    out = hampel(values, np.zeros(8, dtype=int), window=7, k=3.0)
    assert out.tolist() == [False] * 7 + [spike]


def test_hampel_min_deviation_guards_a_plateau_where_mad_is_zero():
    values = np.array([4.0] * 7 + [4.5])
    series = np.zeros(8, dtype=int)
    assert hampel(values, series, window=7, k=3.0)[-1]  # MAD 0: any change is "infinite"
    assert not hampel(values, series, window=7, k=3.0, min_deviation=1.0)[-1]
    assert hampel(np.array([4.0] * 7 + [5.5]), series, window=7, min_deviation=1.0)[-1]


def test_hampel_uses_only_the_same_series_and_waits_for_min_periods():
    values = np.array([*PAST, 100.0, 100.0, 100.0])
    series = np.array([0] * 7 + [1, 1, 1])
    # series 1 has no past of its own: the big values of series 0 must not count
    assert not hampel(values, series, window=7).any()
    # with 2 of its own windows (100, 100), a third 100 is not a spike either
    out = hampel(np.array([1.0, 1.2, 9.0]), np.zeros(3, dtype=int), window=7, min_periods=2)
    # by hand: past (1.0, 1.2) -> median 1.1, MAD 0.1, threshold 0.44478; |9 - 1.1| > it
    assert out.tolist() == [False, False, True]


def test_hampel_skips_missing_values_in_the_window():
    values = np.array([*PAST[:3], NAN, *PAST[4:], 15.5])
    # past without the NaN: 10 12 11 12 11 10 -> median 11; devs 1 1 0 1 0 1 -> MAD 1
    assert not hampel(values, np.zeros(8, dtype=int), window=7)[-1]  # 6 < min_periods 7
    assert hampel(values, np.zeros(8, dtype=int), window=7, min_periods=6)[-1]
    # a missing value itself is never a spike
    assert not hampel(np.array([*PAST, NAN]), np.zeros(8, dtype=int))[-1]


def test_hampel_judges_only_where_asked_and_keeps_the_shape():
    values = np.array([*PAST, 50.0])
    where = np.zeros(8, dtype=bool)
    assert not hampel(values, np.zeros(8, dtype=int), where=where).any()
    where[-1] = True
    out = hampel(values, np.zeros(8, dtype=int), where=where)
    assert out.shape == values.shape and out[-1]


def test_hampel_works_in_blocks_the_same_as_at_once():
    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 5.0, 200_000)
    values[rng.integers(0, values.size, 500)] = np.nan
    values[rng.integers(0, values.size, 500)] *= 20
    series = np.repeat(np.arange(400), 500)
    out = hampel(values, series, window=7, min_periods=4)
    # recomputed directly for rows on both sides of block edges (blocks of 65 536)
    for i in (10, 65_535, 65_536, 65_537, 131_072, 199_999):
        start = series.searchsorted(series[i])
        past = values[max(start, i - 7) : i]
        past = past[~np.isnan(past)]
        if past.size < 4 or np.isnan(values[i]):
            assert not out[i]
            continue
        med = np.median(past)
        mad = np.median(np.abs(past - med))
        assert out[i] == (abs(values[i] - med) > 3 * 1.4826 * mad)


# -- humidity, clock, timestamp ---------------------------------------------------------------


def test_high_humidity_is_strictly_above_the_threshold():
    assert high_humidity(np.array([84.9, 85.0, 85.1, NAN])).tolist() == [False, False, True, False]
    assert high_humidity(np.array([70.5]), threshold=70.0).tolist() == [True]


def test_clock_unsynced_is_synced_false():
    assert clock_unsynced(np.array([True, False])).tolist() == [False, True]


def test_future_timestamp_allows_five_minutes_of_skew():
    now = 1_800_000_000.0
    ts = np.array([now - 60, now + 300, now + 301], dtype=np.int64)
    assert future_timestamp(ts, now).tolist() == [False, False, True]


# -- A/B --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, flagged",
    [
        (2.0, 8.0, True),  # |6| > 5 and 2·6/10 = 1.2 > 0.7
        (10.0, 16.0, False),  # |6| > 5 but 2·6/26 = 0.46
        (1.0, 5.9, False),  # 2·4.9/6.9 = 1.42 but |4.9| <= 5
        (100.0, 40.0, True),  # |60| > 5 and 2·60/140 = 0.857 > 0.7
        (0.0, 0.0, False),
        (NAN, 50.0, False),
    ],
)
def test_ab_disagreement_needs_both_the_absolute_and_the_relative_difference(a, b, flagged):
    assert ab_disagreement(np.array([a]), np.array([b])).tolist() == [flagged]


def test_ab_disagreement_of_opposite_signs_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ab_disagreement(np.array([-3.0]), np.array([3.0])).tolist() == [True]


# -- coverage ----------------------------------------------------------------------------------


def test_low_coverage_for_a_plantower_minute():
    # 60 s / 2.3 s = 26.09 frames expected; 75 % of that is 19.57
    period = np.full(3, FRAME_PERIOD_S["pms5003"])
    n = np.array([19, 20, 60])
    assert low_coverage(n, np.full(3, 60), period).tolist() == [True, False, False]


def test_low_coverage_for_a_one_hertz_sensor_and_an_unknown_one():
    n = np.array([44, 45, 0])
    period = np.array([1.0, 1.0, NAN])
    assert low_coverage(n, np.full(3, 60), period).tolist() == [True, False, False]


def _reference_hampel(values, series, window, k, min_deviation, min_periods, where):
    """Hampel's rule written out one reading at a time: the obviously-correct reference."""
    out = np.zeros(len(values), dtype=bool)
    for i, x in enumerate(values):
        if (where is not None and not where[i]) or np.isnan(x):
            continue
        before = [values[j] for j in range(max(0, i - window), i) if series[j] == series[i]]
        before = np.array([v for v in before if not np.isnan(v)])
        if len(before) < min_periods or len(before) == 0:
            continue
        m = np.median(before)
        mad = np.median(np.abs(before - m))
        out[i] = abs(x - m) > max(k * 1.4826 * mad, min_deviation)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window", [1, 2, 3, 5, 7, 8, 11, 15])
def test_hampel_matches_the_rule_written_out_reading_by_reading(seed, window):
    rng = np.random.default_rng(seed * 100 + window)
    n = 400
    series = np.sort(rng.integers(0, 12, n))  # contiguous series of random lengths
    values = rng.gamma(2.0, 5.0, n)
    spikes = rng.random(n) < 0.08
    values[spikes] *= rng.uniform(3, 12, spikes.sum())
    values[rng.random(n) < 0.1] = np.nan
    where = rng.random(n) < 0.9
    for min_deviation in (0.0, 1.0):
        for min_periods in {1, max(1, window // 2), window}:
            got = kernels.hampel(values, series, window=window, k=3.0, min_deviation=min_deviation,
                                 min_periods=min_periods, where=where)
            want = _reference_hampel(values, series, window, 3.0, min_deviation, min_periods, where)
            assert got.shape == values.shape
            assert np.array_equal(got, want), (min_deviation, min_periods, np.flatnonzero(got != want)[:5])
