"""US EPA PM2.5 Air Quality Index (2024 breakpoints) and the WHO 2021 guideline levels.

The one AQI table of civicair: the API computes from it, the dashboards draw it. Pure
functions, no I/O. The AQI of a concentration ``C`` [µg/m³] is the piecewise
linear interpolation of the EPA Technical Assistance Document (TAD) [1]_, eq. 1::

    I = (I_hi - I_lo) / (BP_hi - BP_lo) * (C - BP_lo) + I_lo

after truncating ``C`` to one decimal place (TAD, "truncate PM2.5 to 1 decimal"),
and rounded to the nearest integer (halves up). Breakpoints from the 2024 PM NAAQS
revision (89 FR 16202, 2024-03-06, table 2 of the TAD [1]_):

=============  =========  ==============================
PM2.5 24-h     AQI        category
=============  =========  ==============================
0.0 – 9.0      0 – 50     Good
9.1 – 35.4     51 – 100   Moderate
35.5 – 55.4    101 – 150  Unhealthy for Sensitive Groups
55.5 – 125.4   151 – 200  Unhealthy
125.5 – 225.4  201 – 300  Very Unhealthy
225.5 – 325.4  301 – 500  Hazardous (one segment since 2024)
> 325.4        —          Beyond the AQI
=============  =========  ==============================

Colours are AirNow's (RGB hex) [2]_; "Beyond the AQI" keeps the Hazardous maroon.

WHO 2021 global air quality guidelines [3]_: PM2.5 annual mean 5 µg/m³; 24-hour
mean 15 µg/m³ as the 99th percentile of a year's daily means (3–4 exceedance days
per year).

References
----------
.. [1] US EPA, "Technical Assistance Document for the Reporting of Daily Air Quality
   – the Air Quality Index (AQI)", May 2024.
.. [2] AirNow, "AQI Basics", https://www.airnow.gov/aqi/aqi-basics/.
.. [3] World Health Organization, "WHO global air quality guidelines: particulate matter
   (PM2.5 and PM10), ozone, nitrogen dioxide, sulfur dioxide and carbon monoxide", 2021,
   table 0.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Category:
    """One row of the AQI table: a concentration span and its index span."""

    name: str
    #: Lowest and highest 24-hour PM2.5 of the category, in tenths of µg/m³ (as truncated).
    low_tenths: int
    high_tenths: int
    aqi_low: int
    aqi_high: int
    colour: str
    #: What it means, in the words of the AQI's health messages (shortened).
    meaning: str

    @property
    def low_ug_m3(self) -> float:
        return self.low_tenths / 10

    @property
    def high_ug_m3(self) -> float:
        return self.high_tenths / 10


#: The table, lowest category first (TAD 2024, table 2; names as the EPA writes them).
CATEGORIES: tuple[Category, ...] = (
    Category("Good", 0, 90, 0, 50, "#00E400", "air quality is satisfactory"),
    Category("Moderate", 91, 354, 51, 100, "#FFFF00",
             "acceptable; unusually sensitive people may be affected"),
    Category("Unhealthy for Sensitive Groups", 355, 554, 101, 150, "#FF7E00",
             "people with heart or lung disease, older adults and children may be affected"),
    Category("Unhealthy", 555, 1254, 151, 200, "#FF0000", "everyone may begin to feel effects"),
    Category("Very Unhealthy", 1255, 2254, 201, 300, "#8F3F97",
             "health alert: everyone is more likely to be affected"),
    Category("Hazardous", 2255, 3254, 301, 500, "#7E0023", "health warning of emergency conditions"),
)
BEYOND = "Beyond the AQI"
BEYOND_COLOUR = "#7E0023"

WHO_ANNUAL_UG_M3 = 5.0
WHO_24H_UG_M3 = 15.0


@dataclass(frozen=True, slots=True)
class Aqi:
    """One AQI reading: ``value`` is None beyond the index (above 325.4 µg/m³)."""

    value: int | None
    category: str
    colour: str
    concentration: float  # the truncated concentration the index was computed from [µg/m³]


def truncate_tenths(concentration: float) -> int:
    """Concentration [µg/m³] truncated to 0.1, in tenths (12.39 -> 123).

    Rounding to 9 decimals first keeps binary floating point from turning 9.1
    (9.0999999…) into 9.0. Negative values (a zero offset of a low-cost sensor)
    count as 0.
    """
    return max(0, math.floor(round(concentration * 10, 9)))


def us_aqi(concentration: float | None) -> Aqi | None:
    """US AQI of a PM2.5 concentration [µg/m³] (24-hour mean for the regulatory index).

    None for a missing or non-finite concentration.
    """
    if concentration is None or not math.isfinite(concentration):
        return None
    return _from_tenths(truncate_tenths(concentration))


@lru_cache(maxsize=4096)
def _from_tenths(tenths: int) -> Aqi:
    for c in CATEGORIES:
        if c.low_tenths <= tenths <= c.high_tenths:
            # Equation 1 in integers: nearest integer, halves up, without binary fractions.
            span, rise = c.high_tenths - c.low_tenths, c.aqi_high - c.aqi_low
            value = c.aqi_low + (2 * rise * (tenths - c.low_tenths) + span) // (2 * span)
            return Aqi(value, c.name, c.colour, tenths / 10)
    return Aqi(None, BEYOND, BEYOND_COLOUR, tenths / 10)


def above_who_24h(daily_mean: float) -> bool:
    """Whether a daily mean [µg/m³] exceeds the WHO 2021 24-hour guideline level."""
    return daily_mean > WHO_24H_UG_M3


def above_who_annual(mean: float) -> bool:
    """Whether a mean [µg/m³] exceeds the WHO 2021 annual guideline level."""
    return mean > WHO_ANNUAL_UG_M3
