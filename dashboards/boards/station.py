"""The Station board: one station's readings, chosen with the ``$station`` variable."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import legend as aqi
from dashboards.boards._shared import (
    SENSOR_CAVEAT,
    STATION_UID,
    TAGS,
    legend_below,
    line_style_dashed,
    links,
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


def _stats() -> list[Builder[dm.Panel]]:
    now = (
        stat_panel("PM2.5 now", """
        The station's latest fine-particle reading (a 1-minute average), coloured by its US AQI
        category. The AQI categories are defined for 24-hour averages, so treat the colour of a
        single reading as a hint.""", _pm('last("pm25")', ""))
        .unit(UNIT_UG_M3).decimals(1).color_scheme(by_thresholds()).thresholds(aqi.thresholds())
        .no_value("no reading in this period")
    )
    day = (
        stat_panel("Last 24 hours, average", f"""
        The mean PM2.5 of the last 24 hours, the period the US AQI and the WHO 24-hour guideline
        ({aqi.WHO_24H_UG_M3:g} µg/m³) are defined for. Coloured by AQI category.""",
                   InfluxQL(f'SELECT mean("pm25") FROM "pm" WHERE {_STATION} AND time > now() - 24h'))
        .unit(UNIT_UG_M3).decimals(1).color_scheme(by_thresholds()).thresholds(aqi.thresholds())
        .no_value("no reading in 24 h")
    )
    last_seen = (
        stat_panel("Last reading", """
        How long ago the station's latest reading was taken. A station that is offline keeps
        measuring and sends what it stored when it is back.""",
                   InfluxQL(f'SELECT last("n") AS "n" FROM "pm" WHERE {_STATION}'),
                   fields="/^Time$/", color_mode=cm.BigValueColorMode.NONE)
        .unit("dateTimeFromNow").color_scheme(colour(dm.FieldColorModeId.FIXED, "text"))
    )
    coverage = (
        stat_panel("Data coverage", """
        The share of the selected time range that this station's readings cover, per sensor
        (a station may have two, A and B). 100 % means no minute is missing.""",
                   _pm('sum("window") * 100000 / $__range_ms', 'GROUP BY "channel"')
                   .alias("sensor $tag_channel"),
                   color_mode=cm.BigValueColorMode.VALUE)
        .unit("percent").decimals(0).min(0).max(100).color_scheme(by_thresholds())
        .thresholds(thresholds(("red", None), ("orange", 50), ("green", 90)))
    )
    return [now, day, last_seen, coverage]


def station() -> db.Dashboard:
    corrected_vs_raw = (
        series_panel("PM2.5: corrected and raw", """
        Solid: the corrected PM2.5 that civicair publishes. Dashed: what the sensor itself
        reported ("raw"). Low-cost optical sensors over-read in humid air; the correction uses a
        published method for this sensor type. Where the two lines coincide, no correction was
        applied. One line per sensor (A, B).""",
                     _pm('mean("pm25")').alias("corrected, sensor $tag_channel"),
                     _pm('mean("pm25_atm")').alias("raw, sensor $tag_channel"), width=24, height=9)
        .override_by_regexp("^raw.*", properties(**{"custom.lineStyle": line_style_dashed()}))
        .legend(legend_below()).tooltip(tooltip_all())
    )
    daily_group = "GROUP BY time(1d) fill(none)"
    daily = (
        series_panel("Daily mean PM2.5 and the WHO guideline", f"""
        Each bar is one day's average PM2.5 (days run midnight to midnight UTC), over the last
        30 days. The background bands are the US AQI categories; the dashed line is the WHO
        24-hour guideline of {aqi.WHO_24H_UG_M3:g} µg/m³, which the WHO recommends be exceeded
        on no more than 3–4 days a year.""",
                     _pm('mean("pm25") AS "daily mean"', daily_group),
                     _pm(f'{aqi.WHO_24H_UG_M3:g} + 0 * mean("pm25") AS "WHO 24-hour guideline"', daily_group),
                     width=24, height=9)
        .time_from("30d").thresholds(aqi.thresholds()).color_scheme(by_thresholds())
        .draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80).bar_alignment(cm.BarAlignment.CENTER)
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.AREA))
        .override_by_name("WHO 24-hour guideline", properties(**{
            "color": colour(dm.FieldColorModeId.FIXED, "text"), "custom.drawStyle": cm.GraphDrawStyle.LINE,
            "custom.lineWidth": 2, "custom.fillOpacity": 0, "custom.lineStyle": line_style_dashed()}))
        .legend(legend_below()).tooltip(tooltip_all())
    )
    per_sensor = "sensor $tag_channel"
    pm10 = series_panel("PM10", """
        Coarser particles, up to 10 micrometres (dust, pollen, road and construction dust),
        as the sensor reports them. Optical sensors see large particles poorly: read PM10 as a
        trend, not an exact level.""", _pm('mean("pm10_atm")').alias(per_sensor), width=8, height=8)
    rh = series_panel("Relative humidity", """
        Humidity measured inside the station's sensor housing. In humid air particles take up
        water and low-cost sensors read high: the correction allows for it, and readings above
        85 % are flagged.""", _pm('mean("rh")').alias(per_sensor), width=8, height=8,
                      unit="humidity", decimals=0).max(100)
    temp = series_panel("Temperature", """
        Temperature inside the sensor housing; sun on the housing makes it read above the air
        temperature.""", _pm('mean("temp")').alias(per_sensor), width=8, height=8, unit="celsius",
                        minimum=None)
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
        tags=TAGS, variables=[variable], links=links(), time_from="now-7d",
    )
