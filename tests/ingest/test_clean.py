"""The cleaning stage: derived columns on a batch, every flag set and unset end to end."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from civicair.schema.qc import Flag
from ingest.clean import Cleaner
from ingest.columns import to_columns
from ingest.lineprotocol import encode
from ingest.quality import QualitySettings

NAN = np.nan
NOW = 1_800_000_000
BASE = {"station": "lab-1", "sensor": "pms5003", "channel": "a", "ts": NOW - 60, "window": 60,
        "n": 60, "seq": 0, "boot": 0, "synced": True,
        "pm25_cf1": 12.0, "pm25_atm": 10.0, "rh": 50.0}


def batch(*rows: dict):
    return to_columns([{**BASE, "seq": i, **row} for i, row in enumerate(rows)])


def qc_of(cleaner: Cleaner, *rows: dict) -> list[int]:
    return cleaner.clean(batch(*rows), now=NOW).derived["qc"].tolist()


def test_clean_sets_the_three_derived_columns():
    b = Cleaner().clean(batch({}, {"sensor": "sds011", "pm25_cf1": None}), now=NOW)
    assert b.derived["pm25"].dtype == np.float64
    assert b.derived["pm25_method"].dtype == object
    assert b.derived["qc"].dtype == np.int64
    assert b.derived["pm25"].tolist() == pytest.approx([0.524 * 12 - 0.0862 * 50 + 5.75,
                                                        10 / 1.24], abs=0.005)


def test_corrected_pm25_is_stored_to_a_hundredth_without_float_noise():
    """0.524·11.25 − 0.0862·56.9 + 5.75 = 6.74022 is 6.740220000000001 in floats (seen in
    the demo stack's CSV); an analyst should read 6.74, and the line protocol writes
    the shortest repr of what is stored."""
    assert 0.524 * 11.25 - 0.0862 * 56.9 + 5.75 == 6.740220000000001
    b = Cleaner().clean(batch({"pm25_cf1": 11.25, "rh": 56.9}, {"sensor": "sds011", "pm25_cf1": None}),
                        now=NOW)
    assert [repr(v) for v in b.derived["pm25"].tolist()] == ["6.74", "8.06"]
    assert b.derived["pm25_method"].tolist() == ["epa_barkjohn_2021", "nilson_2022_kohler"]
    assert b.derived["qc"].tolist() == [0, 0]


def test_a_clean_reading_has_no_flag():
    assert qc_of(Cleaner(), {}) == [0]


@pytest.mark.parametrize(
    "row, bit",
    [
        pytest.param({"pm25_atm": -1.0}, Flag.OUT_OF_RANGE, id="negative"),
        pytest.param({"pm10_atm": 1000.5}, Flag.OUT_OF_RANGE, id="above plantower max"),
        pytest.param({"sensor": "sds011", "pm25_cf1": None, "pm25_atm": 999.95},
                     Flag.OUT_OF_RANGE, id="above sds011 max"),
        pytest.param({"rh": 85.5}, Flag.HIGH_HUMIDITY, id="humid"),
        pytest.param({"synced": False}, Flag.CLOCK_UNSYNCED, id="clock"),
        pytest.param({"ts": NOW + 360}, Flag.FUTURE_TIMESTAMP, id="future"),
        pytest.param({"n": 19}, Flag.LOW_COVERAGE, id="plantower coverage"),
        pytest.param({"sensor": "sps30", "pm25_cf1": None, "n": 44, "rh": None},
                     Flag.LOW_COVERAGE | Flag.UNCORRECTED, id="sps30 coverage"),
        pytest.param({"rh": None}, Flag.UNCORRECTED, id="no humidity"),
    ],
)
def test_each_flag_is_set_by_its_condition_alone(row, bit):
    assert qc_of(Cleaner(), row) == [int(bit)]


@pytest.mark.parametrize(
    "row",
    [
        pytest.param({"pm25_atm": 0.0, "pm25_cf1": 0.0}, id="zero is in range"),
        pytest.param({"pm10_atm": 1000.0}, id="plantower max"),
        pytest.param({"rh": 85.0}, id="85 percent"),
        pytest.param({"ts": NOW + 300}, id="5 minutes ahead"),
        pytest.param({"n": 20}, id="20 of 26 frames"),
        pytest.param({"sensor": "sds011", "pm25_cf1": None, "n": 45}, id="45 of 60 frames"),
        pytest.param({"sensor": "mystery-sensor", "n": 0, "rh": 50.0, "pm25_atm": 5000.0,
                      "pm25_cf1": None, "pm10_atm": None}, id="unknown sensor, only < 0"),
    ],
)
def test_each_flag_stays_unset_at_its_boundary(row):
    qc = qc_of(Cleaner(), row)[0]
    assert qc & ~int(Flag.UNCORRECTED) == 0


@pytest.mark.parametrize(
    "row, bits, method",
    [
        pytest.param({"rh": -0.1}, Flag.OUT_OF_RANGE | Flag.UNCORRECTED, "uncorrected_atm", id="rh below 0"),
        pytest.param({"rh": 100.1}, Flag.OUT_OF_RANGE | Flag.UNCORRECTED, "uncorrected_atm", id="rh above 100"),
        pytest.param({"rh": 250.0}, Flag.OUT_OF_RANGE | Flag.UNCORRECTED, "uncorrected_atm", id="rh 250"),
        pytest.param({"rh": -1e308}, Flag.OUT_OF_RANGE | Flag.UNCORRECTED, "uncorrected_atm", id="rh -1e308"),
        pytest.param({"rh": 1e308}, Flag.OUT_OF_RANGE | Flag.UNCORRECTED, "uncorrected_atm", id="rh 1e308"),
        pytest.param({"temp": -40.1}, Flag.OUT_OF_RANGE, "epa_barkjohn_2021", id="temp below -40"),
        pytest.param({"temp": 125.1}, Flag.OUT_OF_RANGE, "epa_barkjohn_2021", id="temp above 125"),
        pytest.param({"temp": 1e308}, Flag.OUT_OF_RANGE, "epa_barkjohn_2021", id="temp 1e308"),
        pytest.param({"temp": -1e308}, Flag.OUT_OF_RANGE, "epa_barkjohn_2021", id="temp -1e308"),
        pytest.param({"rh": 0.0, "temp": -40.0}, 0, "epa_barkjohn_2021", id="lower edges"),
        pytest.param({"rh": 100.0, "temp": 125.0}, Flag.HIGH_HUMIDITY, "epa_barkjohn_2021", id="upper edges"),
        pytest.param({"rh": None, "temp": None}, Flag.UNCORRECTED, "uncorrected_atm", id="absent"),
        pytest.param({"rh": NAN, "temp": NAN}, Flag.UNCORRECTED, "uncorrected_atm", id="nan"),
    ],
)
def test_humidity_and_temperature_outside_the_companions_range_are_stored_flagged(row, bits, method):
    """RH outside 0–100 % or temp outside −40–125 °C: OUT_OF_RANGE, the value kept as sent;
    such an RH is neither humid nor used by a correction (so a PMS5003 goes uncorrected)."""
    sent = {**BASE, **row}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = Cleaner().clean(batch(row), now=NOW)
        line = encode(b).decode()
    assert b.derived["qc"].tolist() == [int(bits)]
    assert b.derived["pm25_method"].tolist() == [method]
    for name in ("rh", "temp"):
        value = sent.get(name)
        if value is not None and not np.isnan(value):
            assert b.values[name].tolist() == [value]
            assert f",{name}={value!r}," in line or f" {name}={value!r}," in line


def test_an_out_of_range_humidity_flags_only_its_own_reading():
    b = Cleaner().clean(batch({"rh": 250.0}, {"station": "lab-2", "rh": 90.0}, {"station": "lab-3"}), now=NOW)
    assert b.derived["qc"].tolist() == [int(Flag.OUT_OF_RANGE | Flag.UNCORRECTED), int(Flag.HIGH_HUMIDITY), 0]
    assert b.derived["pm25"].tolist() == pytest.approx([10.0, 0.524 * 12 - 0.0862 * 90 + 5.75,
                                                        0.524 * 12 - 0.0862 * 50 + 5.75], abs=0.005)


def test_flat_line_across_two_batches_through_the_cleaner():
    cleaner = Cleaner(QualitySettings(flat_line_windows=3))
    first = [{"ts": NOW - 600 + 60 * i, "pm25_cf1": 7.0} for i in range(2)]
    assert qc_of(cleaner, *first) == [0, 0]
    second = [{"ts": NOW - 480, "pm25_cf1": 7.0}, {"ts": NOW - 420, "pm25_cf1": 7.5}]
    assert qc_of(cleaner, *second) == [int(Flag.FLAT_LINE), 0]


def test_spike_through_the_cleaner_uses_cf1_when_there_is_one():
    cleaner = Cleaner()
    past = [10.0, 12.0, 11.0, 13.0, 12.0, 11.0, 10.0]
    rows = [{"ts": NOW - 600 + 60 * i, "pm25_cf1": v, "pm25_atm": 5.0 + i} for i, v in
            enumerate(past)]
    assert qc_of(cleaner, *rows) == [0] * 7
    # median 11, MAD 1: threshold 4.4478 µg/m³
    assert qc_of(cleaner, {"ts": NOW - 180, "pm25_cf1": 15.5}) == [int(Flag.SPIKE)]


def test_ab_disagreement_through_the_cleaner():
    cleaner = Cleaner()
    qc = qc_of(cleaner, {"pm25_cf1": 2.0}, {"channel": "b", "pm25_cf1": 8.0},
               {"station": "lab-2", "pm25_cf1": 2.0}, {"station": "lab-2", "channel": "b",
                                                      "pm25_cf1": 4.0})
    assert qc == [int(Flag.AB_DISAGREEMENT)] * 2 + [0, 0]


def test_every_bit_but_spike_on_one_reading():
    # A spike deviates from its past and a flat line repeats it: never both at once.
    cleaner = Cleaner(QualitySettings(flat_line_windows=2))
    # An SPS30 is never corrected, so a humid RH and UNCORRECTED meet on one reading (an
    # RH above 100 % would be out of range, not humid: test_humidity_and_temperature_...).
    bad = {"sensor": "sps30", "pm10_atm": -5.0, "pm25_atm": 5.0, "pm25_cf1": None}
    assert qc_of(cleaner, {**bad, "ts": NOW + 540, "rh": None}) == [
        int(Flag.OUT_OF_RANGE | Flag.FUTURE_TIMESTAMP | Flag.UNCORRECTED)]
    row = {**bad, "ts": NOW + 600, "rh": 90.0, "synced": False, "n": 1}
    qc = qc_of(cleaner, row, {"channel": "b", "ts": NOW + 600, "pm25_cf1": 50.0})
    # SENSOR_FAULT needs a status register, which a PMS5003 has not (an SPS30's:
    # tests/ingest/test_consumer_optional_fields.py).
    assert qc[0] == sum(int(f) for f in Flag) - int(Flag.SPIKE) - int(Flag.SENSOR_FAULT)


def test_clean_without_now_uses_the_clock():
    b = Cleaner().clean(batch({"ts": int(time.time()) // 60 * 60}))
    assert b.derived["pm25_method"].tolist() == ["epa_barkjohn_2021"]
    assert b.derived["qc"].tolist() == [0]


def test_an_empty_batch():
    b = Cleaner().clean(to_columns([]), now=NOW)
    assert {k: v.shape for k, v in b.derived.items()} == {"pm25": (0,), "pm25_method": (0,),
                                                         "qc": (0,)}


def test_readings_are_flagged_never_dropped_or_reordered():
    rows = [{"seq": i, "ts": NOW - 60 * (i % 3), "station": f"s{i % 4}", "pm25_atm": v}
            for i, v in enumerate([5.0, -1.0, np.nan, 2000.0, 7.0, 7.0])]
    b = Cleaner().clean(to_columns([{**BASE, **r} for r in rows]), now=NOW)
    assert b.ints["seq"].tolist() == list(range(6))
    assert all(v.shape == (6,) for v in b.derived.values())


def test_a_redelivered_batch_gets_the_same_flags():
    cleaner = Cleaner()
    rows = [{"ts": NOW - 900 + 60 * i, "pm25_cf1": v} for i, v in
            enumerate([10.0, 12.0, 11.0, 13.0, 12.0, 11.0, 10.0, 30.0, 11.0])]
    first = qc_of(cleaner, *rows)
    assert first[7] == int(Flag.SPIKE)
    assert qc_of(cleaner, *rows) == first


def test_cleaned_batch_encodes_to_line_protocol():
    b = Cleaner().clean(batch({"rh": 90.0}), now=NOW)
    line = encode(b).decode()
    assert f"qc={int(Flag.HIGH_HUMIDITY)}i" in line
    assert 'pm25_method="epa_barkjohn_2021"' in line
    assert ",pm25=" in line


def test_cleaning_never_warns():
    rows = [{"pm25_cf1": None, "pm25_atm": None, "rh": None, "n": 0},
            {"channel": "b", "pm25_cf1": np.nan, "rh": 50.0},
            {"sensor": "sds011", "pm25_cf1": None, "pm25_atm": 0.0, "rh": 100.0}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Cleaner().clean(batch(*rows), now=NOW)
