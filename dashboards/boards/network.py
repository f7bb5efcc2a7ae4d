"""The Network health board: stations online, coverage, quality-check rates, readings stored.

Its time series read the raw readings over ranges up to 2 days and the rollups beyond
(:func:`dashboards.boards._shared.by_range`); the rollups count readings with a PM2.5 value
(``pm25_count_all``) where raw counts every reading.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from civicair.schema import storage
from dashboards import legend as aqi
from dashboards.boards._shared import (
    NETWORK_UID,
    ONLINE_MINUTES,
    ONLINE_WINDOW,
    RAW_UP_TO_S,
    READINGS,
    TAGS,
    by_range,
    links,
    rollup_rp_variable,
    series_panel,
    stat_panel,
    tooltip_all,
)
from dashboards.grafana import (
    InfluxQL,
    by_thresholds,
    colour,
    dashboard,
    datasource,
    prose,
    queries,
    thresholds,
)


def _count(title: str, description: str, query: str) -> stat.Panel:
    return (stat_panel(title, description, InfluxQL(query), color_mode=cm.BigValueColorMode.VALUE)
            .unit("none").decimals(0).color_scheme(colour(dm.FieldColorModeId.FIXED, "text")))


def _counts() -> list[stat.Panel]:
    online = _count(
        "Stations online", f"Stations that sent at least one reading in the last {ONLINE_MINUTES} minutes.",
        f'SELECT count("recent") AS "online" FROM (SELECT count("n") AS "recent" FROM "pm" '
        f'WHERE time > now() - {ONLINE_WINDOW} GROUP BY "station")',
    ).color_scheme(colour(dm.FieldColorModeId.FIXED, "green")).no_value("0")
    offline = _count(
        "Stations offline", f"""Stations that have reported before but sent nothing in the last
        {ONLINE_MINUTES} minutes. They keep their readings and send them when they reconnect.""",
        'SELECT count("known") - count("recent") AS "offline" FROM '
        '(SELECT last("n") AS "known" FROM "pm" GROUP BY "station"), '
        f'(SELECT count("n") AS "recent" FROM "pm" WHERE time > now() - {ONLINE_WINDOW} GROUP BY "station")',
    ).color_scheme(by_thresholds()).thresholds(thresholds(("green", None), ("orange", 1))).no_value("0")
    known = _count(
        "Stations ever seen", "Every station that has sent at least one reading.",
        'SELECT count("known") AS "known" FROM (SELECT last("n") AS "known" FROM "pm" GROUP BY "station")')
    last_hour = _count(
        "Readings stored, last hour",
        "Readings written to the database in the last hour, all stations and sensors together.",
        'SELECT count("n") AS "readings" FROM "pm" WHERE time > now() - 1h').no_value("0")
    return [online, offline, known, last_hour]


def _presence() -> statetimeline.Panel:
    mappings: list[dm.ValueMapping] = [
        dm.ValueMap(options={"0": dm.ValueMappingResult(text="no readings", index=0)}),
        dm.RangeMap(options=dm.DashboardRangeMapOptions(
            from_val=1, to=None, result=dm.ValueMappingResult(text="reporting", index=1))),
    ]
    return (
        statetimeline.Panel().title("Stations reporting").description(prose(f"""
        One line per station: green while it is sending readings, red where an interval has
        none. Gaps that turn green again later were usually filled by the station replaying what
        it stored while offline. Over ranges longer than {RAW_UP_TO_S // 86400} days an interval
        is an hour (longer than 30 days: a day)."""))
        .datasource(datasource()).span(24).height(10)
        .targets(queries(*by_range(
            'SELECT count("n") FROM "pm" WHERE $timeFilter GROUP BY time($__interval), "station" fill(0)',
            f'SELECT sum("{READINGS}") FROM {{source}} WHERE $timeFilter '
            'GROUP BY time({every}), "station" fill(0)',
            raw_alias="$tag_station", rollup_alias="$tag_station")))
        .color_scheme(by_thresholds()).thresholds(thresholds(("red", None), ("green", 1))).mappings(mappings)
        .line_width(0).fill_opacity(80)
        .show_value(cm.VisibilityMode.NEVER).merge_values(True).align_value(cm.TimelineValueAlignment.LEFT)
        .row_height(0.9).legend(cb.VizLegendOptions().show_legend(False))
        # Grafana's own default; the SDK's would sort ascending.
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.SINGLE).sort(cm.SortOrder.NONE))
    )


def _bars(title: str, description: str, target: InfluxQL, steps: tuple[tuple[str, float | None], ...],
          unit: str = "percent") -> bargauge.Panel:
    """One horizontal bar per station (or per station and sensor), coloured by ``steps``."""
    panel = (
        bargauge.Panel().title(title).description(prose(description))
        .datasource(datasource()).span(12).height(10).targets(queries(target))
        .unit(unit).decimals(0).min(0).color_scheme(by_thresholds()).thresholds(thresholds(*steps))
        .orientation(cm.VizOrientation.HORIZONTAL).display_mode(cm.BarGaugeDisplayMode.BASIC)
        .show_unfilled(True).reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .value_mode(cm.BarGaugeValueMode.COLOR).name_placement(cm.BarGaugeNamePlacement.AUTO)
        .sizing(cm.BarGaugeSizing.AUTO).min_viz_height(10).min_viz_width(0).max_viz_height(300)
    )
    return panel.max(100) if unit == "percent" else panel


def _coverage() -> bargauge.Panel:
    return _bars("Coverage per station", """
        The share of the selected time range covered by each station's readings, per sensor.
        Below 75 % the station's averages become unreliable.""",
                 InfluxQL('SELECT sum("window") * 100000 / $__range_ms FROM "pm" WHERE $timeFilter '
                          'GROUP BY "station", "channel"').alias("$tag_station $tag_channel"),
                 (("red", None), ("orange", 75), ("green", 90)))


def _sensor_age() -> bargauge.Panel:
    return _bars("Sensor age: share of rated life", """
        How long each sensor's laser and fan have run, against the life its maker rates it for
        (Nova SDS011: 8,000 hours; Plantower: 3 years; Sensirion SPS30: over 10 years). Past
        100 % a sensor keeps measuring, but drifts and drops out more: time to replace it.
        Duty cycling (measuring one window in several) makes a sensor last longer.""",
                 InfluxQL('SELECT last("life_used_a") AS "a", last("life_used_b") AS "b" '
                          'FROM "station" GROUP BY "station"').alias("$tag_station $col"),
                 (("green", None), ("orange", 75), ("red", 100)))


def _awaiting_confirmation() -> bargauge.Panel:
    return _bars("Oldest reading awaiting a stored confirmation", """
        How long the oldest reading each station sent has waited for the server to confirm that
        the database holds it (the station's hourly report). A station keeps every reading until
        then and resends it after 5 minutes, then 10, 20, up to an hour: minutes here are normal
        after an outage, hours mean its readings are not getting through. Stations whose
        bridge predates confirmations report nothing.""",
                 InfluxQL('SELECT last("spool_oldest_unconfirmed_s") AS "oldest" '
                          'FROM "station" GROUP BY "station"').alias("$tag_station"),
                 (("green", None), ("orange", 600), ("red", 3600)), unit="s")


def network() -> db.Dashboard:
    per_minute = series_panel("Readings stored per minute", f"""
        How many readings reach the database each minute, all stations together. A steady line
        is one reading per sensor per minute; a burst is stations catching up after an outage.
        Over ranges longer than {RAW_UP_TO_S // 86400} days: the average per minute of each hour
        (longer than 30 days: of each day).""",
                              *by_range('SELECT count("n") * 60000 / $__interval_ms AS "readings per minute" '
                                        'FROM "pm" WHERE $timeFilter GROUP BY time($__interval) fill(0)',
                                        f'SELECT sum("{READINGS}") * 60 / {{seconds}} '
                                        'AS "readings per minute" FROM {source} WHERE $timeFilter '
                                        'GROUP BY time({every}) fill(0)'),
                              width=12, height=10, unit="none", decimals=0).fill_opacity(10)
    flag_targets = [
        target
        for bit, label, _ in aqi.qc_flags()
        for target in by_range(
            InfluxQL(f'SELECT mean("flag") * 100 / {int(bit)} FROM (SELECT "qc" & {int(bit)} AS "flag" '
                     f'FROM "pm" WHERE $timeFilter) WHERE $timeFilter '
                     'GROUP BY time($__interval) fill(none)'),
            # A flag field is absent where no reading carried it (0), and an hour without
            # readings has no point: fill(0), then leave out the intervals with no readings.
            'SELECT "flagged" * 100 / "readings" FROM (SELECT '
            f'sum("{storage.flag_field(bit.name or str(int(bit)))}") AS "flagged", '
            f'sum("{READINGS}") AS "readings" FROM {{source}} WHERE $timeFilter '
            'GROUP BY time({every}) fill(0)) WHERE "readings" > 0',
            raw_alias=label, rollup_alias=label)
    ]
    flags_md = "; ".join(f"{label}: {explanation}" for _, label, explanation in aqi.qc_flags())
    flags = (
        series_panel("Share of readings flagged, by quality check", f"""
        The percentage of readings in each interval that a quality check flagged. Flagged
        readings are kept and published with their flags, never deleted. The checks are:
        {flags_md}.""", *flag_targets, width=24, height=10, unit="percent").max(100)
        .legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
                .placement(cm.LegendPlacement.RIGHT).show_legend(True).calcs(["mean", "max"]))
        .tooltip(tooltip_all(cm.SortOrder.DESCENDING))
    )
    return dashboard(
        NETWORK_UID, "Air quality: network health",
        """Is the network working? Stations online and offline, how complete each station's data
        are, how often each quality check fires, and how many readings are stored.""",
        [*_counts(), _presence(), _coverage(), per_minute, _sensor_age(), _awaiting_confirmation(), flags],
        tags=TAGS, links=links(), variables=[rollup_rp_variable()], time_from="now-24h",
    )
