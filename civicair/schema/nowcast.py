"""The US EPA NowCast for PM2.5: the "current" concentration AirNow turns into an AQI.

References: US EPA, *Technical Assistance Document for the Reporting of Daily Air
Quality - the Air Quality Index (AQI)*, EPA-454/B-24-002 (2024), section on the
NowCast; US EPA/AirNow, *PM NowCast* fact sheet ("Calculating the NowCast", steps
1-8, with the worked 12-hour example: 13, 16, 10, 21, 74, 64, 53, 82, 90, 75, 80,
50 µg/m³, most recent first, gives 17.4 µg/m³); AirNow-Tech, "The NowCast for PM2.5
and PM10" (completeness and truncation rules).

With ``c_1`` the most recent hourly mean and ``c_12`` the one eleven hours before it::

    w  = c_min / c_max          (= 1 - (c_max - c_min) / c_max, the "weight factor")
    w* = max(w, 0.5)            (0.5 approximates a 3-hour average)
    NowCast = Σ w*^(i-1) · c_i / Σ w*^(i-1)    over the hours i = 1..12 that have data

``c_min`` and ``c_max`` are taken over the hours that have data. The NowCast is valid
only when at least 2 of the 3 most recent hours have data. It is computed from the
hourly means as they are (not truncated), and the result is truncated (not rounded)
to 0.1 µg/m³ for PM2.5, as AirNow does, before it is turned into an AQI.

Decisions (documented here because EPA is silent): an hour whose mean is missing or
NaN counts as missing; a negative hourly mean (a correction's fit can dip below zero
at very low concentrations) is taken as 0 µg/m³; when every hour is 0, ``w`` is 1.
Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HOURS = 12
#: The lower bound of the weight factor.
MIN_WEIGHT = 0.5
#: Of the 3 most recent hours, at least this many must have data.
RECENT_HOURS, RECENT_REQUIRED = 3, 2
HOUR_S = 3600


@dataclass(frozen=True, slots=True)
class NowCast:
    """A NowCast: ``value`` truncated to 0.1 µg/m³ (what AirNow reports and the AQI uses),
    ``raw`` before truncation, the weight factor ``w*`` used, and how many hours had data."""

    value: float
    raw: float
    weight: float
    hours: int


def truncate(value: float, decimals: int = 1) -> float:
    """Truncate toward zero to ``decimals`` places, immune to binary fractions
    (17.4 stored as 17.39999… stays 17.4)."""
    scale = 10**decimals
    return math.floor(round(value * scale, 6)) / scale


def _clean(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f"an hourly mean must be finite, got {value}")
    return max(0.0, float(value))


def nowcast(hourly: Sequence[float | None]) -> NowCast | None:
    """The PM2.5 NowCast of ``hourly`` means in µg/m³, most recent first (``hourly[0]``
    is c_1, the last complete hour); None (missing) or NaN for an hour without data.

    Only the first 12 are used. Returns None when fewer than 2 of the 3 most recent
    hours have data (EPA's completeness rule). Raises ValueError for an infinite mean.
    """
    hours = [_clean(c) for c in list(hourly)[:HOURS]]
    recent = sum(c is not None for c in hours[:RECENT_HOURS])
    if recent < RECENT_REQUIRED:
        return None
    present = [(i, c) for i, c in enumerate(hours) if c is not None]
    c_min = min(c for _, c in present)
    c_max = max(c for _, c in present)
    weight = max(c_min / c_max, MIN_WEIGHT) if c_max > 0 else 1.0
    # i is "hours ago" (0 for c_1): the exponent EPA's step 6 uses.
    numerator = math.fsum(weight**i * c for i, c in present)
    denominator = math.fsum(weight**i for i, _ in present)
    raw = numerator / denominator
    return NowCast(value=truncate(raw), raw=raw, weight=weight, hours=len(present))


def hourly_series(means: Mapping[int, float], last_hour_start: int) -> list[float | None]:
    """The 12 hourly means ending with the hour that starts at ``last_hour_start``
    (epoch seconds, a multiple of 3600), most recent first; None where ``means``
    (keyed by hour start) has no entry. Feeds :func:`nowcast` from a time series."""
    if last_hour_start % HOUR_S:
        raise ValueError(f"an hour starts at a multiple of {HOUR_S} s, got {last_hour_start}")
    return [means.get(last_hour_start - i * HOUR_S) for i in range(HOURS)]
