"""US EPA 2024 PM2.5 AQI at every breakpoint edge (both sides), and the WHO 2021 levels.

Expected values by hand from the TAD's equation 1, I = (Ihi-Ilo)/(BPhi-BPlo)·(C-BPlo)+Ilo,
after truncating C to 0.1 µg/m³ and rounding I to the nearest integer.
"""

from __future__ import annotations

import math

import pytest

from civicair.schema import aqi

EDGES = [
    # concentration, AQI, category
    (0.0, 0, "Good"),
    (9.0, 50, "Good"),
    (9.1, 51, "Moderate"),
    (35.4, 100, "Moderate"),
    (35.5, 101, "Unhealthy for Sensitive Groups"),
    (55.4, 150, "Unhealthy for Sensitive Groups"),
    (55.5, 151, "Unhealthy"),
    (125.4, 200, "Unhealthy"),
    (125.5, 201, "Very Unhealthy"),
    (225.4, 300, "Very Unhealthy"),
    (225.5, 301, "Hazardous"),
    (325.4, 500, "Hazardous"),
]


@pytest.mark.parametrize(("concentration", "expected", "category"), EDGES, ids=[f"{c}" for c, _, _ in EDGES])
def test_aqi_at_each_breakpoint_edge(concentration, expected, category):
    index = aqi.us_aqi(concentration)
    assert (index.value, index.category) == (expected, category)


@pytest.mark.parametrize("concentration", [325.5, 400.0, 1000.0])
def test_above_325_4_is_beyond_the_aqi(concentration):
    index = aqi.us_aqi(concentration)
    assert index.value is None and index.category == "Beyond the AQI" and index.colour == "#7E0023"


@pytest.mark.parametrize(("concentration", "expected"), [
    (9.09, 50),  # truncated to 9.0, not rounded up to 9.1
    (35.49, 100),
    (55.49, 150),
    (125.49, 200),
    (225.49, 300),
    (325.49, 500),  # truncated to 325.4: still inside the index
])
def test_concentration_is_truncated_to_one_decimal_before_the_lookup(concentration, expected):
    assert aqi.us_aqi(concentration).value == expected


@pytest.mark.parametrize(("concentration", "expected"), [
    (12.0, 56),  # 49/26.3 * 2.9 + 51 = 56.40
    (20.0, 71),  # 49/26.3 * 10.9 + 51 = 71.31
    (45.0, 124),  # 49/19.9 * 9.5 + 101 = 124.39
    (275.4, 400),  # 199/99.9 * 49.9 + 301 = 400.40
    (4.5, 25),  # 50/9 * 4.5 = 25.0
])
def test_aqi_inside_a_band_by_hand(concentration, expected):
    assert aqi.us_aqi(concentration).value == expected


@pytest.mark.parametrize(("value", "colour"), [
    (5.0, "#00E400"), (20.0, "#FFFF00"), (40.0, "#FF7E00"), (100.0, "#FF0000"), (200.0, "#8F3F97"),
    (300.0, "#7E0023"),
])
def test_colours_are_airnows(value, colour):
    assert aqi.us_aqi(value).colour == colour


def test_missing_negative_and_non_finite_concentrations():
    assert aqi.us_aqi(None) is None
    assert aqi.us_aqi(math.nan) is None
    assert aqi.us_aqi(math.inf) is None
    assert aqi.us_aqi(-0.4).value == 0  # a low-cost sensor's zero offset


def test_binary_floating_point_does_not_drop_a_tenth():
    # 9.1 * 10 is 90.99999999999999 in binary; truncation must still see 91 tenths.
    assert aqi.truncate_tenths(9.1) == 91
    assert aqi.truncate_tenths(0.3) == 3
    assert aqi.us_aqi(9.1).value == 51


def test_who_2021_guideline_levels():
    assert not aqi.above_who_24h(15.0) and aqi.above_who_24h(15.1)
    assert not aqi.above_who_annual(5.0) and aqi.above_who_annual(5.01)
