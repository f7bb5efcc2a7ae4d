"""What the three boards share: uids, links, wording, the stat and PM time-series panels, and
the switch between raw readings and the rollups by the length of the time range."""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from civicair.schema import contract, storage
from dashboards import retention
from dashboards.grafana import UNIT_UG_M3, InfluxQL, colour, dashboard_link, datasource, prose, queries

#: A station that has sent nothing for this long is shown as offline. Bridges send a
#: reading per 60 s window; 15 minutes tolerates a few lost windows and a slow replay.
ONLINE_WINDOW = "15m"
ONLINE_MINUTES = ONLINE_WINDOW[:-1]
TAGS = ["civicair", "air quality"]

# -- raw readings or rollups, by the range's length (docs/dashboards.md) ----------------------
#: Up to this range length [s] a panel reads the raw readings (measurement ``pm``), at
#: Grafana's interval; up to :data:`HOURLY_UP_TO_S` the hourly rollup, one point an hour;
#: beyond, the daily rollup, one point a day. A 2-day range is ~2,900 raw minutes per
#: sensor, a 30-day range 720 hours, a year 365 days: a few thousand points at most.
RAW_UP_TO_S = 2 * 86400
HOURLY_UP_TO_S = 30 * 86400
#: The rollups' statistics over every reading, flagged or not: the raw panels average
#: every reading too, so a panel shows the same level on both sides of a switch.
MEAN = {param: storage.rollup_field(param, "mean", clean=False) for param in storage.ROLLUP_PARAMS}
READINGS = storage.rollup_field("pm25", "count", clean=False)
#: Per channel, the rollups' sum of every reading's window [s] (the coverage panels).
WINDOW = {channel: storage.ROLLUP_FIELDS[f"window_{channel}"].name for channel in contract.CHANNELS}


def coverage_columns(per: str) -> str:
    """The rollups' coverage per sensor in percent, one column per channel (``"a"``, ``"b"``):
    the sum of the window seconds over ``per`` (an InfluxQL expression of milliseconds)."""
    return ", ".join(f'sum("{field}") * 100000 / {per} AS "{channel}"' for channel, field in WINDOW.items())


@dataclass(frozen=True, slots=True)
class Rollup:
    """One rollup as a panel reads it: measurement, bucket, the range lengths it is on for."""

    measurement: str
    every: str
    seconds: int
    switch: str
    label: str

    @property
    def source(self) -> str:
        """The measurement in the rollups' retention policy: ``"$rollup_rp"."pm_1h"``."""
        return retention.source(self.measurement)


def rollup_rp_variable() -> db.ConstantVariable:
    """The hidden constant naming the rollups' retention policy (empty: the default policy).

    Committed empty; ``civicair dashboards publish`` and ``build --rollup-rp`` set it
    (:mod:`dashboards.retention`)."""
    variable = (db.ConstantVariable(retention.VARIABLE).label("Retention policy of the rollups")
                .description("Where pm_1h, pm_1d and pm_nowcast are kept (CIVICAIR_ROLLUP_RP of the rollup "
                             "worker); empty: the database's default policy.")
                .value(""))
    variable.build().skip_url_sync = True  # not a viewer's choice (Grafana never syncs a constant)
    return variable


RAW_SWITCH = f"$__range_s <= {RAW_UP_TO_S}"
HOURLY = Rollup(storage.PM_1H, "1h", 3600, f"$__range_s > {RAW_UP_TO_S} AND $__range_s <= {HOURLY_UP_TO_S}",
                "hourly mean")
DAILY = Rollup(storage.PM_1D, "1d", 86400, f"$__range_s > {HOURLY_UP_TO_S}", "daily mean")
ROLLUPS = (HOURLY, DAILY)


def _switched(query: str, switch: str) -> str:
    # Every time filter takes the switch (a subquery's too), so no part of a query that is
    # off reads anything.
    if "$timeFilter" not in query:
        raise ValueError(f"a switched query needs a $timeFilter: {query!r}")
    return query.replace("$timeFilter", f"$timeFilter AND {switch}")


def by_range(raw: InfluxQL | str, rollup: str, *, raw_alias: str | None = None,
             rollup_alias: str | None = None) -> list[InfluxQL]:
    """The raw query for short ranges, then the same panel's query on each rollup.

    ``rollup`` is a template: ``{source}`` (the rollup measurement in the rollups'
    retention policy, ``"$rollup_rp"."pm_1h"``: write ``FROM {source}``), ``{every}`` (the
    rollup's bucket, ``1h``/``1d``) and ``{seconds}`` (its length in seconds) are filled in per rollup;
    ``{label}`` in ``rollup_alias`` becomes "hourly mean"/"daily mean". Each query is
    switched on by ``$__range_s`` (which InfluxDB folds: a query switched off reads no
    series), so exactly one of them runs for any range.
    """
    raw_query = raw if isinstance(raw, InfluxQL) else InfluxQL(raw)
    raw_query.build().query = _switched(raw_query.build().query, RAW_SWITCH)
    if raw_alias:
        raw_query.alias(raw_alias)
    out = [raw_query]
    for r in ROLLUPS:
        q = InfluxQL(_switched(rollup.format(source=r.source, every=r.every, seconds=r.seconds),
                               r.switch))
        if rollup_alias:
            q.alias(rollup_alias.format(label=r.label))
        out.append(q)
    return out


#: The US EPA NowCast, per station, as the rollup worker writes it (one point per station
#: and clock hour, time = the end of the hour it is current from, written only where EPA's
#: rule, 2 of the last 3 hours with data, gives one). So the current NowCast is the point
#: of the last whole hour; the previous hour's stands in until the worker has written it
#: (the hour settles 2 min after its end, then the worker's next pass): 75 min. A longer
#: window would show a NowCast EPA's rule has ended (a station silent for 2 of the last 3
#: hours) for hours after /v1/latest stopped giving one.
NOWCAST_WINDOW = "75m"


def nowcast_per_station() -> InfluxQL:
    """Each station's current NowCast: ``NowCast`` [µg/m³] and ``AQI``, one row per station."""
    pm25, aqi_value = storage.NOWCAST_FIELDS[0], storage.NOWCAST_FIELDS[1]
    return InfluxQL(f'SELECT last("{pm25}") AS "NowCast", last("{aqi_value}") AS "AQI" '
                    f'FROM {retention.source(storage.PM_NOWCAST)} WHERE time > now() - {NOWCAST_WINDOW} '
                    'GROUP BY "station"'
                    ).table()


OVERVIEW_UID = "civicair-overview"
STATION_UID = "civicair-station"
NETWORK_UID = "civicair-network"

SENSOR_CAVEAT = (
    "Readings come from low-cost optical sensors run by volunteers. They track changes well, but "
    "their absolute values can be off, especially in humid air: use them to compare places and "
    "times, not as official measurements."
)


def links() -> list[db.DashboardLink]:
    return [
        dashboard_link("Overview", OVERVIEW_UID),
        dashboard_link("Station", STATION_UID, keep_vars=True),
        dashboard_link("Network health", NETWORK_UID),
    ]


def legend_below() -> cb.VizLegendOptions:
    return (cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM).show_legend(True))


def tooltip_all(sort: cm.SortOrder = cm.SortOrder.NONE) -> cb.VizTooltipOptions:
    return cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(sort)


def line_style_dashed() -> cb.LineStyle:
    return cb.LineStyle().fill("dash").dash([10, 10])


def stat_panel(title: str, description: str, target: InfluxQL | tuple[InfluxQL, ...], *, width: int = 6,
               height: int = 5,
               calc: str = "lastNotNull", fields: str = "",
               color_mode: cm.BigValueColorMode = cm.BigValueColorMode.BACKGROUND) -> stat.Panel:
    """One big number per query or field; the field settings (unit, colours, no-value text) are chained on."""
    return (stat.Panel().title(title).description(prose(description)).datasource(datasource())
            .targets(queries(*(target if isinstance(target, tuple) else (target,))))
            .span(width).height(height)
            .reduce_options(cb.ReduceDataOptions().calcs([calc]).fields(fields).values(False))
            .color_mode(color_mode).graph_mode(cm.BigValueGraphMode.NONE)
            .justify_mode(cm.BigValueJustifyMode.AUTO).orientation(cm.VizOrientation.AUTO)
            .text_mode(cm.BigValueTextMode.VALUE).wide_layout(True).show_percent_change(False))


def series_panel(title: str, description: str, *targets: InfluxQL, width: int, height: int,
                 unit: str = UNIT_UG_M3, decimals: int = 1, minimum: float | None = 0) -> timeseries.Panel:
    """Lines over time, one per series, in the classic palette; min 0 unless ``minimum=None``."""
    panel = (timeseries.Panel().title(title).description(prose(description)).datasource(datasource())
             .targets(queries(*targets)).span(width).height(height)
             .unit(unit).decimals(decimals).color_scheme(colour(dm.FieldColorModeId.PALETTE_CLASSIC))
             .draw_style(cm.GraphDrawStyle.LINE).line_width(1).fill_opacity(0)
             .show_points(cm.VisibilityMode.NEVER).span_nulls(False)
             .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.OFF)))
    return panel.min(minimum) if minimum is not None else panel
