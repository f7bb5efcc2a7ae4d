"""The Station board: one station's readings, chosen with the ``$station`` variable.

Its time series read the raw readings over ranges up to 2 days and the rollups beyond
(:func:`dashboards.boards._shared.by_range`); the daily bars always read the daily rollup.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from civicair.schema import storage
from dashboards import legend as aqi
from dashboards import retention
from dashboards.boards._shared import (
    MEAN,
    NOWCAST_WINDOW,
    RAW_UP_TO_S,
    SENSOR_CAVEAT,
    STATION_UID,
    TAGS,
    by_range,
    legend_below,
    line_style_dashed,
    links,
    rollup_rp_variable,
    series_panel,
    stat_panel,
    tooltip_all,
)
from dashboards.grafana import (
    UNIT_UG_M3,
    InfluxQL,
    by_thresholds,
    colour,
    dashboard,
    properties,
    query_variable,
    thresholds,
)

_STATION = "\"station\" = '$station'"
_PER_CHANNEL = 'GROUP BY time($__interval), "channel" fill(null)'


def _pm(select: str, group: str = _PER_CHANNEL) -> InfluxQL:
    """A query over the chosen station's readings in the selected time range."""
    return InfluxQL(f'SELECT {select} FROM "pm" WHERE {_STATION} AND $timeFilter {group}')


def _rollup(select: str, group: str = "GROUP BY time({every}) fill(null)") -> str:
    """A query template over the chosen station's rollup points (see ``by_range``)."""
    return f'SELECT {select} FROM {{source}} WHERE {_STATION} AND $timeFilter {group}'


def _stats() -> list[Builder[dm.Panel]]:
    pm25, aqi_value = storage.NOWCAST_FIELDS[0], storage.NOWCAST_FIELDS[1]
    nowcast = (
        stat_panel("Air quality now (NowCast)", f"""
        The station's current US Air Quality Index and the PM2.5 NowCast (µg/m³) it comes from,
        coloured by AQI category. {aqi.NOWCAST} Always now, whatever time range is selected.""",
                   InfluxQL(f'SELECT last("{aqi_value}") AS "AQI", last("{pm25}") AS "NowCast" '
                            f'FROM {retention.source(storage.PM_NOWCAST)} WHERE {_STATION} '
                            f'AND time > now() - {NOWCAST_WINDOW}'))
        .unit(UNIT_UG_M3).decimals(1).color_scheme(by_thresholds()).thresholds(aqi.thresholds())
        .override_by_name("AQI", properties(unit="none", decimals=0, thresholds=aqi.aqi_thresholds(),
                                            mappings=aqi.aqi_mappings()))
        .no_value("no NowCast: too few recent hours")
    )
    now = (
        stat_panel("PM2.5, latest minute", """
        The station's latest fine-particle reading (a 1-minute average) in the selected period,
        coloured by its US AQI category. It reacts at once but is noisy; the NowCast beside it
        is the steadier "now" the AQI is meant for.""", _pm('last("pm25")', ""), width=5)
        .unit(UNIT_UG_M3).decimals(1).color_scheme(by_thresholds()).thresholds(aqi.thresholds())
        .no_value("no reading in this period")
    )
    day = (
        stat_panel("Last 24 hours, average", f"""
        The mean PM2.5 of the last 24 hours, the period the US AQI and the WHO 24-hour guideline
        ({aqi.WHO_24H_UG_M3:g} µg/m³) are defined for. Coloured by AQI category.""",
                   InfluxQL(f'SELECT mean("pm25") FROM "pm" WHERE {_STATION} AND time > now() - 24h'),
                   width=5)
        .unit(UNIT_UG_M3).decimals(1).color_scheme(by_thresholds()).thresholds(aqi.thresholds())
        .no_value("no reading in 24 h")
    )
    last_seen = (
        stat_panel("Last reading", """
        How long ago the station's latest reading was taken. A station that is offline keeps
        measuring and sends what it stored when it is back.""",
                   InfluxQL(f'SELECT last("n") AS "n" FROM "pm" WHERE {_STATION}'),
                   fields="/^Time$/", color_mode=cm.BigValueColorMode.NONE, width=4)
        .unit("dateTimeFromNow").color_scheme(colour(dm.FieldColorModeId.FIXED, "text"))
    )
    coverage = (
        stat_panel("Data coverage", """
        The share of the selected time range that this station's readings cover, per sensor
        (a station may have two, A and B). 100 % means no minute is missing.""",
                   _pm('sum("window") * 100000 / $__range_ms', 'GROUP BY "channel"')
                   .alias("sensor $tag_channel"),
                   color_mode=cm.BigValueColorMode.VALUE, width=4)
        .unit("percent").decimals(0).min(0).max(100).color_scheme(by_thresholds())
        .thresholds(thresholds(("red", None), ("orange", 50), ("green", 90)))
    )
    return [nowcast, now, day, last_seen, coverage]


_LONG_RANGES = f"""Over ranges longer than {RAW_UP_TO_S // 86400} days the lines are hourly means of
both sensors together (longer than 30 days: daily means)."""


def _series(param: str, raw_alias: str, rollup_alias: str) -> list[InfluxQL]:
    """A station parameter: per sensor from raw readings, per station from the rollups."""
    return by_range(_pm(f'mean("{param}")'), _rollup(f'mean("{MEAN[param]}")'),
                    raw_alias=raw_alias, rollup_alias=rollup_alias)


def station() -> db.Dashboard:
    corrected_vs_raw = (
        series_panel("PM2.5: corrected and raw", f"""
        Solid: the corrected PM2.5 that civicair publishes. Dashed: what the sensor itself
        reported ("raw"). Low-cost optical sensors over-read in humid air; the correction uses a
        published method for this sensor type. Where the two lines coincide, no correction was
        applied. One line per sensor (A, B). {_LONG_RANGES}""",
                     *_series("pm25", "corrected, sensor $tag_channel", "corrected, {label}"),
                     *_series("pm25_atm", "raw, sensor $tag_channel", "raw, {label}"), width=24, height=9)
        .override_by_regexp("^raw.*", properties(**{"custom.lineStyle": line_style_dashed()}))
        .legend(legend_below()).tooltip(tooltip_all())
    )
    # Daily by nature: always the daily rollup, whatever the range.
    daily_group = "GROUP BY time(1d) fill(none)"
    mean_pm25, daily_source = MEAN["pm25"], retention.source(storage.PM_1D)
    daily = (
        series_panel("Daily mean PM2.5 and the WHO guideline", f"""
        Each bar is one day's average PM2.5 (days run midnight to midnight UTC), over the last
        30 days. The background bands are the US AQI categories; the dashed line is the WHO
        24-hour guideline of {aqi.WHO_24H_UG_M3:g} µg/m³, which the WHO recommends be exceeded
        on no more than 3–4 days a year.""",
                     *(InfluxQL(_rollup(sel, daily_group).format(source=daily_source)) for sel in (
                         f'mean("{mean_pm25}") AS "daily mean"',
                         f'{aqi.WHO_24H_UG_M3:g} + 0 * mean("{mean_pm25}") AS "WHO 24-hour guideline"')),
                     width=24, height=9)
        .time_from("30d").thresholds(aqi.thresholds()).color_scheme(by_thresholds())
        .draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80).bar_alignment(cm.BarAlignment.CENTER)
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.AREA))
        .override_by_name("WHO 24-hour guideline", properties(**{
            "color": colour(dm.FieldColorModeId.FIXED, "text"), "custom.drawStyle": cm.GraphDrawStyle.LINE,
            "custom.lineWidth": 2, "custom.fillOpacity": 0, "custom.lineStyle": line_style_dashed()}))
        .legend(legend_below()).tooltip(tooltip_all())
    )
    per_sensor, per_station = "sensor $tag_channel", "{label}"
    pm10 = series_panel("PM10", f"""
        Coarser particles, up to 10 micrometres (dust, pollen, road and construction dust),
        as the sensor reports them. Optical sensors see large particles poorly: read PM10 as a
        trend, not an exact level. {_LONG_RANGES}""", *_series("pm10_atm", per_sensor, per_station),
                        width=8, height=8)
    rh = series_panel("Relative humidity", f"""
        Humidity measured inside the station's sensor housing. In humid air particles take up
        water and low-cost sensors read high: the correction allows for it, and readings above
        85 % are flagged. {_LONG_RANGES}""", *_series("rh", per_sensor, per_station), width=8, height=8,
                      unit="humidity", decimals=0).max(100)
    temp = series_panel("Temperature", f"""
        Temperature inside the sensor housing; sun on the housing makes it read above the air
        temperature. {_LONG_RANGES}""", *_series("temp", per_sensor, per_station), width=8, height=8,
                        unit="celsius", minimum=None)
    coverage = series_panel("Data coverage over time", """
        The share of each interval covered by readings, per sensor. Dips mean the station was
        off, offline, or its sensor sent too few samples.""",
                            _pm('sum("window") * 100000 / $__interval_ms',
                                'GROUP BY time($__interval), "channel" fill(0)').alias(per_sensor),
                            width=24, height=6, unit="percent", decimals=0).max(100)
    variable = query_variable(
        "station", "Station", 'SHOW TAG VALUES FROM "pm" WITH KEY = "station"',
        "The station to show: every station that has sent a reading.")
    return dashboard(
        STATION_UID, "Air quality: station",
        f"""One station in detail: corrected and raw PM2.5, PM10, humidity, temperature, daily means
        against the WHO guideline, and how complete its data are. {SENSOR_CAVEAT}""",
        [*_stats(), corrected_vs_raw, daily, pm10, rh, temp, coverage],
        tags=TAGS, variables=[variable, rollup_rp_variable()], links=links(), time_from="now-7d",
    )
