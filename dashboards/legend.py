"""Grafana thresholds, value mappings and legends drawn from the shared tables.

The AQI categories and the WHO levels come from :mod:`civicair.schema.aqi`, the quality
flags from :mod:`civicair.schema.qc`; this module only turns them into what Grafana
panels take. On a concentration scale, a concentration beyond the index (above 325.4
µg/m³) keeps the Hazardous maroon (:func:`thresholds`, :func:`value_mappings`). The NowCast
points store its AQI as 501 (``storage.NOWCAST_BEYOND_AQI``), which every AQI field shows as
"Beyond the AQI", as the API names it, in the same maroon (:func:`aqi_mappings`,
:func:`aqi_thresholds`); the colour legend has a row for it.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from civicair.schema.aqi import BEYOND, BEYOND_COLOUR, CATEGORIES, WHO_24H_UG_M3
from civicair.schema.qc import TEXT as QC_TEXT
from civicair.schema.qc import Flag
from civicair.schema.storage import NOWCAST_BEYOND_AQI

__all__ = ["BEYOND", "NOWCAST", "WHO_24H_UG_M3", "aqi_mappings", "aqi_thresholds", "legend_markdown",
           "qc_flags", "thresholds", "value_mappings"]

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


#: An AQI field at or above this shows as :data:`BEYOND`: the stored 501, and a median of
#: stations' AQIs that would round to it (500.5: one at 500, one beyond).
BEYOND_FROM = min(CATEGORIES[-1].aqi_high + 0.5, NOWCAST_BEYOND_AQI)


def aqi_thresholds() -> db.ThresholdsConfig:
    """The same categories as :func:`thresholds`, on the index itself (0–50 Good, 51–100 …),
    and "Beyond the AQI" (stored as 501) in its own maroon."""
    steps = [dm.Threshold(value=None, color=CATEGORIES[0].colour)]
    steps += [dm.Threshold(value=c.aqi_low, color=c.colour) for c in CATEGORIES[1:]]
    steps.append(dm.Threshold(value=BEYOND_FROM, color=BEYOND_COLOUR))
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def aqi_mappings() -> list[dm.ValueMapping]:
    """An AQI field's value mapping: 501 (``storage.NOWCAST_BEYOND_AQI``, above 325.4 µg/m³)
    shows as "Beyond the AQI" in maroon, not as a number on the index's 0–500 scale."""
    return [dm.RangeMap(options=dm.DashboardRangeMapOptions(
        from_val=BEYOND_FROM, to=None,
        result=dm.ValueMappingResult(text=BEYOND, color=BEYOND_COLOUR, index=0)))]


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
    for c in CATEGORIES:
        dot = f'<span style="color:{c.colour}">●</span>'
        rows.append(f"| {c.low_ug_m3:g} – {c.high_ug_m3:g} | {dot} {c.name} | {c.meaning} |")
    dot = f'<span style="color:{BEYOND_COLOUR}">●</span>'
    rows.append(f"| above {CATEGORIES[-1].high_ug_m3:g} | {dot} {BEYOND} "
                f"| off the top of the index (smoke): {CATEGORIES[-1].meaning} |")
    return "\n".join(rows)


def qc_flags() -> list[tuple[Flag, str, str]]:
    """(bit, label, explanation) of every quality flag, lowest bit first."""
    return [(flag, QC_TEXT[flag].label, QC_TEXT[flag].explanation) for flag in Flag]
