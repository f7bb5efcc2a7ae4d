"""Published corrections, each against values computed by hand from the paper."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ingest.columns import to_columns
from ingest.corrections import (
    METHOD_NAMES,
    NILSON_GROWTH,
    PLANTOWER,
    SDS011,
    SPS30,
    UNKNOWN_FAMILY,
    barkjohn_2021,
    barkjohn_2022_quadratic,
    correct,
    correct_codes,
    nilson_2022,
    sensor_family,
    smoke_blend_weight,
    us_epa,
)

NAN = np.nan
A = np.array


# -- Barkjohn et al. 2021 -----------------------------------------------------------------


def test_barkjohn_2021_by_hand():
    # 0.524·20 − 0.0862·50 + 5.75 = 10.48 − 4.31 + 5.75
    assert barkjohn_2021(A([20.0]), A([50.0]))[0] == pytest.approx(11.92, abs=1e-12)
    # 0.524·0 − 0.0862·100 + 5.75 = −2.87: the raw equation goes negative …
    assert barkjohn_2021(A([0.0]), A([100.0]))[0] == pytest.approx(-2.87)


def test_us_epa_is_never_below_zero():
    # … the applied correction does not.
    assert us_epa(A([0.0, 1.0]), A([100.0, 90.0])).tolist() == [0.0, 0.0]


# -- Barkjohn et al. 2022: the smoke extension and both sides of each join ---------------------


def test_barkjohn_2022_quadratic_by_hand():
    # 4.21e-4·611² + 0.392·611 + 3.44 = 157.168141 + 239.512 + 3.44: the 400 µg/m³ of the abstract
    assert barkjohn_2022_quadratic(A([611.0]))[0] == pytest.approx(400.120141, abs=1e-9)
    # 4.21e-4·1000² + 0.392·1000 + 3.44 = 421 + 392 + 3.44
    assert barkjohn_2022_quadratic(A([1000.0]))[0] == pytest.approx(816.44, abs=1e-9)


def test_blend_weight_as_published():
    # 0.0244·570 − 13.9 = 13.908 − 13.9 ; 0.0244·611 − 13.9 = 14.9084 − 13.9
    assert smoke_blend_weight(A([570.0, 611.0])) == pytest.approx([0.008, 1.0084], abs=1e-12)


@pytest.mark.parametrize(
    "pm25_cf1, expected",
    [
        pytest.param(20.0, 11.92, id="low: 2021 equation"),
        # 0.524·569.99 − 0.0862·50 + 5.75 = 298.67476 − 4.31 + 5.75
        pytest.param(569.99, 300.11476, id="just below 570: 2021 equation"),
        # w = 0.008; eq3 = 136.7829 + 223.44 + 3.44 = 363.6629; eq1 = 298.68 − 4.31 + 5.75 = 300.12
        # 0.008·363.6629 + 0.992·300.12 = 2.9093032 + 297.71904
        pytest.param(570.0, 300.6283432, id="at 570: blend"),
        # w = 14.908156 − 13.9 = 1.008156; eq3 = 157.1629964221 + 239.50808 + 3.44 = 400.1110764221
        # eq1 = 320.15876 − 4.31 + 5.75 = 321.59876; 1.008156·eq3 − 0.008156·eq1
        pytest.param(610.99, 400.7514228748, id="just below 611: blend"),
        pytest.param(611.0, 400.120141, id="at 611: quadratic"),
        pytest.param(1000.0, 816.44, id="high: quadratic"),
    ],
)
def test_us_epa_on_both_sides_of_each_join(pm25_cf1, expected):
    assert us_epa(A([pm25_cf1]), A([50.0]))[0] == pytest.approx(expected, abs=1e-8)


def test_the_published_joins_step_by_under_a_microgram():
    # The rounded published weight is 0.008 at 570 and 1.0084 at 611, not 0 and 1:
    # the steps are the published equations' own, kept as published.
    below, at = us_epa(A([np.nextafter(570.0, 0.0), 570.0]), A([50.0, 50.0]))
    assert at - below == pytest.approx(0.008 * (363.6629 - 300.12), abs=1e-6)  # +0.508
    below, at = us_epa(A([np.nextafter(611.0, 0.0), 611.0]), A([50.0, 50.0]))
    assert below - at == pytest.approx(0.0084 * (400.120141 - 321.604), abs=1e-6)  # 0.660


def test_the_quadratic_ignores_humidity():
    assert us_epa(A([800.0, 800.0]), A([10.0, 90.0])).tolist() == [
        barkjohn_2022_quadratic(A([800.0]))[0]] * 2


def test_us_epa_keeps_missing_values_missing():
    assert np.isnan(us_epa(A([NAN]), A([50.0]))).all()


# -- Nilson et al. 2022 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rh, expected",
    [
        # 20 / (1 + 0.24/(100/50 − 1)) = 20 / 1.24
        pytest.param(50.0, 16.1290322581, id="RH 50"),
        # RH limited to 70: 20 / (1 + 0.24/(100/70 − 1)) = 20 / (1 + 0.24/0.428571) = 20 / 1.56
        pytest.param(70.0, 12.8205128205, id="RH 70"),
        pytest.param(95.0, 12.8205128205, id="RH 95 limited to 70"),
        # RH limited to 30: 20 / (1 + 0.24/(100/30 − 1)) = 20 / (1 + 0.24/2.333333) = 20 / 1.102857
        pytest.param(30.0, 18.1347150259, id="RH 30"),
        pytest.param(5.0, 18.1347150259, id="RH 5 limited to 30"),
    ],
)
def test_nilson_2022_by_hand(rh, expected):
    assert nilson_2022(A([20.0]), A([rh]))[0] == pytest.approx(expected, abs=1e-9)


def test_nilson_growth_is_kappa_over_1_65():
    assert NILSON_GROWTH * 1.65 == pytest.approx(0.396)


def test_nilson_keeps_missing_values_missing_and_never_goes_negative():
    out = nilson_2022(A([NAN, 20.0, -3.0]), A([50.0, NAN, 50.0]))
    assert np.isnan(out[:2]).all() and out[2] == 0.0


# -- routing ---------------------------------------------------------------------------------

HEADER = {"station": "lab-1", "channel": "a", "ts": 1_800_000_060, "window": 60, "n": 30,
          "seq": 0, "boot": 0, "synced": True}


def readings(*rows: dict) -> object:
    return to_columns([{**HEADER, **row} for row in rows])


def test_sensor_family_per_reading():
    sensors = np.array(["pms5003", "sds011", "sps30", "pms7003", "pmsa003", "pms5003t",
                        "pms5003st", "mystery"], dtype=object)
    assert sensor_family(sensors).tolist() == [PLANTOWER, SDS011, SPS30, PLANTOWER, PLANTOWER,
                                               PLANTOWER, PLANTOWER, UNKNOWN_FAMILY]


def test_correct_routes_each_sensor_to_its_method():
    batch = readings(
        {"sensor": "pms5003", "pm25_cf1": 20.0, "pm25_atm": 15.0, "rh": 50.0},
        {"sensor": "pms5003st", "pm25_cf1": 800.0, "pm25_atm": 600.0, "rh": 50.0},
        {"sensor": "pms5003", "pm25_atm": 20.0, "rh": 50.0},
        {"sensor": "sds011", "pm25_atm": 20.0, "rh": 50.0},
        {"sensor": "sds011", "pm25_atm": 20.0},
        {"sensor": "pms5003", "pm25_cf1": 20.0, "pm25_atm": 15.0},
        {"sensor": "sps30", "pm25_atm": 9.0, "rh": 50.0},
        {"sensor": "pms5003", "pm25_cf1": 20.0, "pm25_atm": 15.0, "rh": 120.0},
        {"sensor": "sds011", "pm10_atm": 30.0},
    )
    pm25, method = correct(batch)
    assert method.dtype == object
    assert method.tolist() == [
        "epa_barkjohn_2021", "epa_barkjohn_2022_smoke", "nilson_2022_kohler",
        "nilson_2022_kohler", "uncorrected_atm", "uncorrected_atm", "uncorrected_atm",
        "uncorrected_atm", "none",
    ]
    expected = [11.92, 4.21e-4 * 800**2 + 0.392 * 800 + 3.44, 20 / 1.24, 20 / 1.24,
                20.0, 15.0, 9.0, 15.0]
    assert pm25[:8] == pytest.approx(expected)
    assert np.isnan(pm25[8])


def test_correct_without_any_pm_or_humidity_column():
    batch = readings({"sensor": "pms5003", "n": 0})
    pm25, method = correct(batch)
    assert np.isnan(pm25).all() and method.tolist() == ["none"]


def test_correct_keeps_the_shape_and_never_warns():
    batch = readings(*({"sensor": s, "pm25_cf1": c, "pm25_atm": a, "rh": h}
                       for s, c, a, h in [("pms5003", NAN, 3.0, NAN), ("sds011", NAN, NAN, 40.0),
                                          ("pms5003", 1.0, NAN, 100.0)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm25, method = correct(batch)
    assert pm25.shape == method.shape == (3,)
    assert method.tolist() == ["uncorrected_atm", "none", "epa_barkjohn_2021"]
    assert pm25[2] == 0.0  # 0.524 − 8.62 + 5.75 < 0


@pytest.mark.parametrize("rh", [-0.1, 100.1, 250.0, -1e308, 1e308])
def test_a_humidity_outside_0_to_100_is_not_used_even_if_huge(rh):
    batch = readings({"sensor": "pms5003", "pm25_cf1": 20.0, "pm25_atm": 15.0, "rh": rh},
                     {"sensor": "sds011", "pm25_atm": 20.0, "rh": rh})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm25, method = correct(batch)
    assert method.tolist() == ["uncorrected_atm", "uncorrected_atm"] and pm25.tolist() == [15.0, 20.0]


def test_correct_codes_takes_the_humidity_the_caller_passes():
    """The cleaner passes RH with out-of-range values taken out; the batch's own is ignored."""
    batch = readings({"sensor": "pms5003", "pm25_cf1": 20.0, "pm25_atm": 15.0, "rh": 50.0},
                     {"sensor": "pms5003", "pm25_cf1": 20.0, "pm25_atm": 15.0, "rh": 50.0})
    pm25, method = correct_codes(batch, rh=A([NAN, 60.0]))
    assert METHOD_NAMES[method].tolist() == ["uncorrected_atm", "epa_barkjohn_2021"]
    assert pm25.tolist() == pytest.approx([15.0, 0.524 * 20 - 0.0862 * 60 + 5.75])


def test_method_names_are_the_documented_strings():
    assert METHOD_NAMES.tolist() == ["none", "epa_barkjohn_2021", "epa_barkjohn_2022_smoke",
                                     "nilson_2022_kohler", "uncorrected_atm"]
