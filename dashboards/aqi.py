"""Published thresholds the dashboards draw: US AQI categories and the WHO guideline.

Data tables only; the panels in :mod:`dashboards.boards` turn them into Grafana
thresholds and value mappings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    #: Lowest 24-hour PM2.5 of the category [µg/m³], as printed in the table.
    low_ug_m3: float
    #: Highest [µg/m³]; None for the open top category.
    high_ug_m3: float | None
    color: str
    #: What it means, in the words of the AQI's health messages (shortened).
    meaning: str


#: US EPA Air Quality Index categories for 24-hour PM2.5, as revised in 2024:
#: "Reconsideration of the National Ambient Air Quality Standards for Particulate
#: Matter", final rule, 89 FR 16202 (7 March 2024), Table 9 of 40 CFR part 58
#: appendix G. Concentrations are truncated to one decimal before they are
#: categorised, so 9.06 is "Good": a Grafana threshold at the next category's lower
#: bound (9.1) does exactly that. Colours are the AQI's own RGB values.
US_AQI_PM25_2024: tuple[Category, ...] = (
    Category("Good", 0.0, 9.0, "#00E400", "air quality is satisfactory"),
    Category("Moderate", 9.1, 35.4, "#FFFF00", "acceptable; unusually sensitive people may be affected"),
    Category("Unhealthy for sensitive groups", 35.5, 55.4, "#FF7E00",
             "people with heart or lung disease, older adults and children may be affected"),
    Category("Unhealthy", 55.5, 125.4, "#FF0000", "everyone may begin to feel effects"),
    Category("Very unhealthy", 125.5, 225.4, "#8F3F97",
             "health alert: everyone is more likely to be affected"),
    Category("Hazardous", 225.5, None, "#7E0023", "health warning of emergency conditions"),
)

#: WHO global air quality guidelines (2021), recommended 24-hour PM2.5 level
#: [µg/m³] (99th percentile: no more than 3-4 days a year above it).
WHO_24H_PM25_UG_M3 = 15.0
#: The same guidelines' annual mean level [µg/m³].
WHO_ANNUAL_PM25_UG_M3 = 5.0


def thresholds() -> dict:
    """Grafana threshold steps, one per category (a value >= step's value takes its colour)."""
    steps: list[dict[str, str | float | None]] = [{"color": US_AQI_PM25_2024[0].color, "value": None}]
    steps += [{"color": c.color, "value": c.low_ug_m3} for c in US_AQI_PM25_2024[1:]]
    return {"mode": "absolute", "steps": steps}


def value_mappings() -> list[dict]:
    """Grafana range mappings: a concentration shows as its category's name."""
    out = []
    for i, c in enumerate(US_AQI_PM25_2024):
        # The next category's lower bound, so 9.05 (truncated: 9.0) stays "Good".
        upper = US_AQI_PM25_2024[i + 1].low_ug_m3 - 1e-9 if i + 1 < len(US_AQI_PM25_2024) else None
        out.append({"type": "range", "options": {
            "from": c.low_ug_m3 if i else None, "to": upper,
            "result": {"text": c.name, "color": c.color, "index": i},
        }})
    return out


def legend_markdown() -> str:
    rows = ["| PM2.5, 24-hour mean (µg/m³) | US AQI category | what it means |", "| --- | --- | --- |"]
    for c in US_AQI_PM25_2024:
        top = f"{c.high_ug_m3:g}" if c.high_ug_m3 is not None else None
        span = f"{c.low_ug_m3:g} – {top}" if top else f"{c.low_ug_m3:g} and above"
        rows.append(f'| {span} | <span style="color:{c.color}">●</span> {c.name} | {c.meaning} |')
    return "\n".join(rows)
