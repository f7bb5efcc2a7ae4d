"""Sampler: epoch-aligned windows, trimmed means, warm-up, no pre-2020 stamps."""

from __future__ import annotations

import math

import pytest

from firmware_bridge import contract
from firmware_bridge.sampler import Sampler, trimmed_mean

T0 = 1_800_000_000  # a multiple of 60: 2027-01-15T08:00:00Z


def make(**kw):
    return Sampler(station="lab-1", sensor="pms5003", window_s=60, **kw)


def test_trimmed_mean_cuts_a_tenth_each_end_from_ten_values():
    expected = (2 + 3 + 4 + 5 + 6 + 7 + 8 + 9) / 8
    assert trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 1000]) == pytest.approx(expected)
    assert trimmed_mean([1, 2, 1000]) == pytest.approx(1003 / 3)  # too few to trim
    assert math.isnan(trimmed_mean([]))


def test_window_closes_at_the_epoch_aligned_boundary_with_mean_and_n():
    s = make()
    out = []
    for k in range(60):
        out += s.add({"pm25_atm": float(k % 3)}, T0 + k + 0.5)
    assert out == []
    (reading,) = s.add({"pm25_atm": 9.0}, T0 + 60.2)
    assert reading["ts"] == T0 + 60
    assert reading["n"] == 60
    assert reading["pm25_atm"] == pytest.approx(1.0)  # 0,1,2 repeated: trimming keeps the mean
    assert reading["window"] == 60 and reading["seq"] == 0
    contract.validate_reading(reading, "lab-1")


def test_tick_closes_a_window_without_a_new_frame_and_seq_increments():
    s = make(seq=41)
    s.add({"pm25_atm": 5.0}, T0 + 10)
    (r,) = s.tick(T0 + 61)
    assert (r["seq"], r["n"], r["pm25_atm"]) == (41, 1, 5.0)
    assert s.tick(T0 + 200) == []  # nothing was measured since


def test_warm_up_frames_are_discarded():
    s = make(warmup_until=T0 + 30)
    for k in range(60):
        s.add({"pm25_atm": 100.0 if k < 30 else 10.0}, T0 + k)
    (r,) = s.tick(T0 + 60)
    assert r["n"] == 30 and r["pm25_atm"] == 10.0
    assert s.discarded_warmup == 30


def test_no_reading_is_ever_stamped_before_2020_or_after_2100():
    s = make()
    s.add({"pm25_atm": 5.0}, 1000.0)  # a Pi without RTC, before NTP
    assert s.tick(2000.0) == []
    s.add({"pm25_atm": 5.0}, contract.LATEST_TS + 10.0)  # a clock set wildly wrong
    assert s.tick(contract.LATEST_TS + 100.0) == []


def test_missing_values_are_left_out_not_zero():
    s = make()
    s.add({"pm25_atm": 5.0, "rh": float("nan")}, T0 + 1)
    (r,) = s.tick(T0 + 60)
    assert "rh" not in r


def test_live_sensor_without_frames_still_publishes_its_window_with_n_zero():
    s = make()
    assert s.tick(T0 + 0.4, live=True) == []  # opens the window ending at T0 + 60
    (r,) = s.tick(T0 + 60.3, live=True)
    assert (r["ts"], r["n"]) == (T0 + 60, 0)
    assert "pm25_atm" not in r
    contract.validate_reading(r, "lab-1")
    (r,) = s.tick(T0 + 120.2, live=True)  # and the next one, joined at its start
    assert (r["ts"], r["n"]) == (T0 + 120, 0)


def test_a_sensor_that_wakes_mid_window_publishes_no_empty_partial_window():
    s = make()
    assert s.tick(T0 + 45, live=True) == []  # woke 45 s into a window: not joined
    assert s.tick(T0 + 60.2, live=True) == []
    s.add({"pm25_atm": 4.0}, T0 + 61)
    (r,) = s.tick(T0 + 120.1, live=True)
    assert (r["n"], r["pm25_atm"]) == (1, 4.0)


def test_window_min_and_max_are_published_for_mass_and_climate_values():
    s = make()
    for k, v in enumerate([3.0, 9.0, 6.0]):
        s.add({"pm25_atm": v, "n0_3": 100.0 + k, "rh": 40.0 + k}, T0 + k)
    (r,) = s.tick(T0 + 60)
    assert r["min"] == {"pm25_atm": 3.0, "rh": 40.0}
    assert r["max"] == {"pm25_atm": 9.0, "rh": 42.0}
    contract.validate_reading(r, "lab-1")


def test_discard_drops_a_partial_window():
    s = make()
    s.add({"pm25_atm": 5.0}, T0 + 1)
    s.discard()
    assert s.tick(T0 + 61) == []
