"""US EPA PM2.5 NowCast against EPA's worked example and values computed by hand."""

from __future__ import annotations

import math

import pytest

from civicair.schema.nowcast import hourly_series, nowcast, truncate


def test_epa_worked_example_with_the_weight_at_its_floor():
    # EPA "Computing the NowCast" example, most recent hour first:
    hours = [13, 16, 10, 21, 74, 64, 53, 82, 90, 75, 80, 50]
    # range 90 - 10 = 80, scaled rate 80/90, w = 1 - 80/90 = 0.11 < 0.5 -> w* = 0.5.
    # Σ 0.5^i c_i = 13 + 8 + 2.5 + 2.625 + 4.625 + 2 + 0.828125 + 0.640625 + 0.3515625
    #             + 0.146484375 + 0.078125 + 0.0244140625 = 34.8193359375
    # Σ 0.5^i     = 2 - 0.5^11 = 1.99951171875
    # NowCast     = 34.8193359375 / 1.99951171875 = 17.41392 -> 17.4 µg/m³ (EPA: 17.4)
    result = nowcast(hours)
    assert result is not None
    assert result.weight == 0.5 and result.hours == 12
    assert result.raw == pytest.approx(34.8193359375 / 1.99951171875)
    assert result.value == 17.4


def test_single_hour_pulse_is_about_half_its_value():
    # One hour at 71 µg/m³ after 11 clean hours: w* = 0.5, NowCast = 71 / (2 - 0.5^11)
    # = 35.5087 -> 35.5; an hour later it has halved: 0.5 * 71 / 1.99951 = 17.754 -> 17.7.
    assert nowcast([71] + [0] * 11).value == 35.5
    assert nowcast([0, 71] + [0] * 10).value == 17.7


def test_steady_air_is_the_plain_average():
    # c_min = c_max: w = 1, every hour weighs the same.
    result = nowcast([12.3] * 12)
    assert result.weight == 1.0 and result.value == 12.3


def test_weight_between_the_floor_and_one_by_hand():
    # Two hours, third missing (2 of 3 recent: valid). w = 8 / 10 = 0.8.
    # (10 + 0.8 * 8) / (1 + 0.8) = 16.4 / 1.8 = 9.111 -> 9.1
    result = nowcast([10, 8, None])
    assert result.weight == pytest.approx(0.8) and result.value == 9.1 and result.hours == 2


def test_missing_latest_hour_keeps_the_hours_ago_exponents_and_truncates():
    # c_1 missing; c_2 = 20, c_3 = 10: w = 0.5; (0.5 * 20 + 0.25 * 10) / (0.5 + 0.25)
    # = 12.5 / 0.75 = 16.667 -> 16.6 (truncated, where rounding would say 16.7).
    assert nowcast([None, 20, 10]).value == 16.6


def test_gaps_further_back_are_skipped_in_both_sums():
    # w = 5 / 10 = 0.5: (10 + 0.5 * 10 + 0.5^5 * 5) / (1 + 0.5 + 0.5^5) = 15.15625 / 1.53125 = 9.897 -> 9.8
    assert nowcast([10, 10, None, None, None, 5] + [math.nan] * 6).value == 9.8


@pytest.mark.parametrize("hours", [
    [None, None, 30, 30, 30],
    [50, None, None] + [40] * 9,
    [],
    [math.nan, 12, math.nan],
])
def test_fewer_than_two_of_the_three_latest_hours_is_no_nowcast(hours):
    assert nowcast(hours) is None


def test_only_twelve_hours_count():
    assert nowcast([10] * 12 + [1000]).value == 10.0


def test_all_zero_hours_are_zero_and_negative_means_count_as_zero():
    assert nowcast([0] * 12).value == 0.0
    # -2 -> 0: c_min = 0, w* = 0.5; (4 + 0.5 * 0) / 1.5 = 2.667 -> 2.6
    assert nowcast([4, -2]).value == 2.6


def test_an_infinite_mean_is_refused():
    with pytest.raises(ValueError, match="finite"):
        nowcast([5, math.inf, 5])


def test_truncation_ignores_binary_fractions():
    assert truncate(17.4) == 17.4 and truncate(0.3) == 0.3 and truncate(35.5087) == 35.5
    assert truncate(9.99999) == 9.9


def test_hourly_series_from_a_time_series():
    means = {7200: 5.0, 10800: 6.0, 3600 * 12: 7.0}
    series = hourly_series(means, 3600 * 12)
    assert series[0] == 7.0 and series[9] == 6.0 and series[10] == 5.0 and series[1] is None
    assert len(series) == 12
    with pytest.raises(ValueError, match="multiple of 3600"):
        hourly_series(means, 100)
