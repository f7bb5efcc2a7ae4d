"""Grafana thresholds, value mappings and legends drawn from the shared tables.

The AQI categories and the WHO levels come from :mod:`civicair.schema.aqi`, the quality
flags from :mod:`civicair.schema.qc`; this module only turns them into what Grafana
panels take. One deliberate difference from the API: a map or a stat panel shows a
concentration beyond the index (above 325.4 µg/m³) as "Hazardous" in the same maroon,
where the API says "Beyond the AQI": a legend needs no seventh row for smoke.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from civicair.schema.aqi import CATEGORIES, WHO_24H_UG_M3
from civicair.schema.qc import TEXT as QC_TEXT
from civicair.schema.qc import Flag

__all__ = ["NOWCAST", "WHO_24H_UG_M3", "aqi_thresholds", "legend_markdown", "qc_flags", "thresholds",
           "value_mappings"]

#: What the NowCast is, for the public: every panel that shows it says so.
NOWCAST = (
    "The NowCast is how the US EPA and AirNow report the current air quality: a weighted "
    "average of the station's last 12 hourly means in which the most recent hours count most, "
    "and count more the faster the air is changing. It follows a smoke episode within an hour "
    "or two, yet is steadier than a single reading, and is what the AQI categories (defined for "
    "24-hour averages) are applied to for \"now\". It is updated after each full hour and needs "
    "data in 2 of the last 3 hours."
)


def thresholds() -> db.ThresholdsConfig:
    """Grafana threshold steps, one per category (a value >= step's value takes its colour).

    Concentrations are truncated to one decimal before they are categorised, so 9.06 is
    "Good": a threshold at the next category's lower bound (9.1) does exactly that.
    """
    steps = [dm.Threshold(value=None, color=CATEGORIES[0].colour)]
    steps += [dm.Threshold(value=c.low_ug_m3, color=c.colour) for c in CATEGORIES[1:]]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def aqi_thresholds() -> db.ThresholdsConfig:
    """The same categories as :func:`thresholds`, on the index itself (0–50 Good, 51–100 …)."""
    steps = [dm.Threshold(value=None, color=CATEGORIES[0].colour)]
    steps += [dm.Threshold(value=c.aqi_low, color=c.colour) for c in CATEGORIES[1:]]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def value_mappings() -> list[dm.ValueMapping]:
    """Grafana range mappings: a concentration shows as its category's name."""
    out: list[dm.ValueMapping] = []
    for i, c in enumerate(CATEGORIES):
        # The next category's lower bound, so 9.05 (truncated: 9.0) stays "Good".
        upper = CATEGORIES[i + 1].low_ug_m3 - 1e-9 if i + 1 < len(CATEGORIES) else None
        out.append(dm.RangeMap(options=dm.DashboardRangeMapOptions(
            from_val=c.low_ug_m3 if i else None, to=upper,
            result=dm.ValueMappingResult(text=c.name, color=c.colour, index=i))))
    return out


def legend_markdown() -> str:
    rows = ["| PM2.5, 24-hour mean (µg/m³) | US AQI category | what it means |", "| --- | --- | --- |"]
    for i, c in enumerate(CATEGORIES):
        top = f"– {c.high_ug_m3:g}" if i + 1 < len(CATEGORIES) else "and above"  # open top: see module doc
        span = f"{c.low_ug_m3:g} {top}"
        rows.append(f'| {span} | <span style="color:{c.colour}">●</span> {c.name} | {c.meaning} |')
    return "\n".join(rows)


def qc_flags() -> list[tuple[Flag, str, str]]:
    """(bit, label, explanation) of every quality flag, lowest bit first."""
    return [(flag, QC_TEXT[flag].label, QC_TEXT[flag].explanation) for flag in Flag]
