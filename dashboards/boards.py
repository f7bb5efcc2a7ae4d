"""The three public dashboards: Overview, Station and Network health.

Each function returns one dashboard as a dict; :data:`BOARDS` lists them with
the file name ``civicair dashboards build`` writes. Queries follow the InfluxDB
schema of DESIGN.md: measurement ``pm`` (tags station, sensor, channel; fields
``pm25`` corrected, the sensor's own ``pm25_atm`` …, ``rh``, ``temp``, ``qc``,
``n``, ``window``) and measurement ``station`` (tag station; fields name, lat,
lon). Descriptions are written for a member of the public: what the panel shows,
where the numbers come from, and what they cannot tell.
"""

from __future__ import annotations

from collections.abc import Callable

from dashboards import legend as aqi
from dashboards.grafana import (
    UNIT_UG_M3,
    dashboard,
    dashboard_link,
    drop_fields,
    influxql,
    join_by_station,
    panel,
    query_variable,
    text,
    thresholds,
)

#: A station that has sent nothing for this long is shown as offline. Bridges send a
#: reading per 60 s window; 15 minutes tolerates a few lost windows and a slow replay.
ONLINE_WINDOW = "15m"
TAGS = ["civicair", "air quality"]

OVERVIEW_UID = "civicair-overview"
STATION_UID = "civicair-station"
NETWORK_UID = "civicair-network"

SENSOR_CAVEAT = (
    "Readings come from low-cost optical sensors run by volunteers. They track changes well, but "
    "their absolute values can be off, especially in humid air: use them to compare places and "
    "times, not as official measurements."
)


def _links() -> list[dict]:
    return [
        dashboard_link("Overview", OVERVIEW_UID),
        dashboard_link("Station", STATION_UID, keep_vars=True),
        dashboard_link("Network health", NETWORK_UID),
    ]


def _pm_defaults(**extra) -> dict:
    return {
        "unit": UNIT_UG_M3,
        "decimals": 1,
        "min": 0,
        "color": {"mode": "palette-classic"},
        "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "showPoints": "never",
                   "spanNulls": False, "thresholdsStyle": {"mode": "off"}},
        **extra,
    }


def _stat_options(calc: str = "lastNotNull", fields: str = "", color_mode: str = "background") -> dict:
    return {
        "reduceOptions": {"calcs": [calc], "fields": fields, "values": False},
        "colorMode": color_mode,
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "value",
        "wideLayout": True,
        "showPercentChange": False,
    }


def _by_name(name: str, **properties) -> dict:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k, "value": v} for k, v in properties.items()]}


def _by_regex(pattern: str, **properties) -> dict:
    return {"matcher": {"id": "byRegexp", "options": pattern},
            "properties": [{"id": k, "value": v} for k, v in properties.items()]}


# -- Overview ---------------------------------------------------------------------------


def overview() -> dict:
    latest = influxql(
        'SELECT last("pm25") AS "pm25" FROM "pm" WHERE $timeFilter GROUP BY "station"', table=True)
    positions = influxql(
        'SELECT last("lat") AS "lat", last("lon") AS "lon", last("name") AS "name" '
        'FROM "station" GROUP BY "station"', table=True)
    geomap = panel(
        "geomap", "Latest PM2.5 at each station",
        f"""Each dot is a station, coloured by its latest fine-particle (PM2.5) reading in the
        selected time range, using the US Air Quality Index categories (see "What the colours
        mean"). Hover over a dot for the station's name and value. Stations that have not
        reported in the selected range, or have no position yet, are not shown.
        {SENSOR_CAVEAT}""",
        [latest, positions], width=16, height=17,
        field_config={"unit": UNIT_UG_M3, "decimals": 1, "color": {"mode": "thresholds"},
                      "thresholds": aqi.thresholds()},
        transformations=[drop_fields("B", "Time"), join_by_station("inner")],
        options={
            "view": {"id": "fit", "allLayers": True, "lat": 0, "lon": 0, "zoom": 12, "padding": 20},
            "controls": {"showZoom": True, "mouseWheelZoom": False, "showAttribution": True,
                         "showScale": True},
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [{
                "type": "markers",
                "name": "PM2.5",
                "tooltip": True,
                "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                "config": {
                    "showLegend": True,
                    "style": {
                        "color": {"field": "pm25", "fixed": "dark-green"},
                        "opacity": 0.9,
                        "size": {"fixed": 12},
                        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                        "symbolAlign": {"horizontal": "center", "vertical": "center"},
                        "text": {"mode": "field", "field": "name", "fixed": ""},
                        "textConfig": {"fontSize": 11, "offsetX": 0, "offsetY": -14,
                                       "textAlign": "center", "textBaseline": "bottom"},
                    },
                },
            }],
            "tooltip": {"mode": "details"},
        },
    )
    city_now = panel(
        "stat", "City-wide PM2.5 now",
        f"""The middle value (median) of the latest PM2.5 reading of every station that reported in
        the last {ONLINE_WINDOW[:-1]} minutes. Half the stations read more, half less; one faulty
        or unusually placed sensor cannot move it much. The colour is its US AQI category.""",
        [influxql(f'SELECT median("pm25") AS "median" FROM (SELECT last("pm25") AS "pm25" FROM "pm" '
                  f'WHERE time > now() - {ONLINE_WINDOW} GROUP BY "station")')],
        width=8, height=6,
        field_config={"unit": UNIT_UG_M3, "decimals": 1, "color": {"mode": "thresholds"},
                      "thresholds": aqi.thresholds(), "noValue": "no station online"},
        options=_stat_options(),
    )
    legend = text("What the colours mean", f"""
Fine particles (PM2.5) are particles smaller than 2.5 micrometres: they reach deep into the
lungs. Colours follow the US Air Quality Index categories for PM2.5 (2024 revision), which
are defined for **24-hour averages**; a single reading only gives an idea.

{aqi.legend_markdown()}

The World Health Organization recommends that the 24-hour average stay below
**{aqi.WHO_24H_UG_M3:g} µg/m³** (WHO air quality guidelines, 2021).
""", width=8, height=11)
    stations = panel(
        "table", "Stations",
        f"""Every station that has ever reported: its latest PM2.5 reading, how long ago that was,
        and whether it is online (at least one reading in the last {ONLINE_WINDOW[:-1]} minutes).
        An offline station may have lost power or Wi-Fi; its readings are kept on the station and
        arrive when it reconnects. Click a column header to sort.""",
        [
            influxql('SELECT last("pm25") AS "pm25" FROM "pm" GROUP BY "station"', table=True),
            influxql(f'SELECT count("n") AS "recent" FROM "pm" WHERE time > now() - {ONLINE_WINDOW} '
                     'GROUP BY "station"', table=True),
            influxql('SELECT last("name") AS "name" FROM "station" GROUP BY "station"', table=True),
        ],
        width=24, height=10,
        field_config={"custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": False}},
        overrides=[
            _by_name("PM2.5 (µg/m³)", unit=UNIT_UG_M3, decimals=1, thresholds=aqi.thresholds(),
                     color={"mode": "thresholds"}, **{"custom.cellOptions": {"type": "color-background"}}),
            _by_name("Last reading", unit="dateTimeFromNow"),
            _by_name("Status", mappings=[
                {"type": "special", "options": {
                    "match": "null", "result": {"text": "offline", "color": "red", "index": 0}}},
                {"type": "range", "options": {
                    "from": 1, "to": None, "result": {"text": "online", "color": "green", "index": 1}}},
            ], **{"custom.cellOptions": {"type": "color-text"}}),
        ],
        transformations=[
            drop_fields("B", "Time"),
            drop_fields("C", "Time"),
            join_by_station("outer"),
            {"id": "organize", "options": {
                "indexByName": {"name": 0, "station": 1, "pm25": 2, "Time": 3, "recent": 4},
                "renameByName": {"name": "Name", "station": "Station id", "pm25": "PM2.5 (µg/m³)",
                                 "Time": "Last reading", "recent": "Status"},
                "excludeByName": {},
            }},
        ],
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False},
                 "sortBy": [{"displayName": "Name", "desc": False}]},
    )
    city_trend = panel(
        "timeseries", "City-wide PM2.5 over time",
        """The median of all stations' readings in each interval, over the selected time range.
        Daily patterns (traffic, heating, cooking) and pollution episodes show up here first.""",
        [influxql('SELECT median("pm25") AS "median of all stations" FROM "pm" WHERE $timeFilter '
                  'GROUP BY time($__interval) fill(none)')],
        width=24, height=8,
        field_config=_pm_defaults(thresholds=aqi.thresholds()),
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                 "tooltip": {"mode": "multi", "sort": "none"}},
    )
    return dashboard(
        OVERVIEW_UID, "Air quality: overview",
        f"""Fine-particle pollution (PM2.5) measured by volunteers' sensors across the city.
        {SENSOR_CAVEAT}""",
        [geomap, city_now, legend, stations, city_trend], tags=TAGS, links=_links(),
    )


# -- Station --------------------------------------------------------------------------------

_STATION = "\"station\" = '$station'"


def station() -> dict:
    def q(select: str, group: str = 'GROUP BY time($__interval), "channel" fill(null)') -> str:
        return f'SELECT {select} FROM "pm" WHERE {_STATION} AND $timeFilter {group}'

    now = panel(
        "stat", "PM2.5 now",
        """The station's latest fine-particle reading (a 1-minute average), coloured by its US AQI
        category. The AQI categories are defined for 24-hour averages, so treat the colour of a
        single reading as a hint.""",
        [influxql(q('last("pm25")', ""))], width=6, height=5,
        field_config={"unit": UNIT_UG_M3, "decimals": 1, "color": {"mode": "thresholds"},
                      "thresholds": aqi.thresholds(), "noValue": "no reading in this period"},
        options=_stat_options(),
    )
    day = panel(
        "stat", "Last 24 hours, average",
        f"""The mean PM2.5 of the last 24 hours, the period the US AQI and the WHO 24-hour guideline
        ({aqi.WHO_24H_UG_M3:g} µg/m³) are defined for. Coloured by AQI category.""",
        [influxql(f'SELECT mean("pm25") FROM "pm" WHERE {_STATION} AND time > now() - 24h')],
        width=6, height=5,
        field_config={"unit": UNIT_UG_M3, "decimals": 1, "color": {"mode": "thresholds"},
                      "thresholds": aqi.thresholds(), "noValue": "no reading in 24 h"},
        options=_stat_options(),
    )
    last_seen = panel(
        "stat", "Last reading",
        """How long ago the station's latest reading was taken. A station that is offline keeps
        measuring and sends what it stored when it is back.""",
        [influxql(f'SELECT last("n") AS "n" FROM "pm" WHERE {_STATION}')], width=6, height=5,
        field_config={"unit": "dateTimeFromNow", "color": {"mode": "fixed", "fixedColor": "text"}},
        options=_stat_options(fields="/^Time$/", color_mode="none"),
    )
    coverage_total = panel(
        "stat", "Data coverage",
        """The share of the selected time range that this station's readings cover, per sensor
        (a station may have two, A and B). 100 % means no minute is missing.""",
        [influxql(q('sum("window") * 100000 / $__range_ms', 'GROUP BY "channel"'),
                  alias="sensor $tag_channel")],
        width=6, height=5,
        field_config={"unit": "percent", "decimals": 0, "min": 0, "max": 100, "color": {"mode": "thresholds"},
                      "thresholds": thresholds(("red", None), ("orange", 50), ("green", 90))},
        options=_stat_options(color_mode="value"),
    )
    corrected_vs_raw = panel(
        "timeseries", "PM2.5: corrected and raw",
        """Solid: the corrected PM2.5 that civicair publishes. Dashed: what the sensor itself
        reported ("raw"). Low-cost optical sensors over-read in humid air; the correction uses a
        published method for this sensor type. Where the two lines coincide, no correction was
        applied. One line per sensor (A, B).""",
        [influxql(q('mean("pm25")'), alias="corrected, sensor $tag_channel"),
         influxql(q('mean("pm25_atm")'), alias="raw, sensor $tag_channel")],
        width=24, height=9,
        field_config=_pm_defaults(),
        overrides=[_by_regex("^raw.*", **{"custom.lineStyle": {"fill": "dash", "dash": [10, 10]}})],
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                 "tooltip": {"mode": "multi", "sort": "none"}},
    )
    daily = panel(
        "timeseries", "Daily mean PM2.5 and the WHO guideline",
        f"""Each bar is one day's average PM2.5 (days run midnight to midnight UTC), over the last
        30 days. The background bands are the US AQI categories; the dashed line is the WHO
        24-hour guideline of {aqi.WHO_24H_UG_M3:g} µg/m³, which the WHO recommends be exceeded
        on no more than 3–4 days a year.""",
        [influxql(q('mean("pm25") AS "daily mean"', "GROUP BY time(1d) fill(none)")),
         influxql(q(f'{aqi.WHO_24H_UG_M3:g} + 0 * mean("pm25") AS "WHO 24-hour guideline"',
                    "GROUP BY time(1d) fill(none)"))],
        width=24, height=9, timeFrom="30d",
        field_config=_pm_defaults(
            thresholds=aqi.thresholds(), color={"mode": "thresholds"},
            custom={"drawStyle": "bars", "fillOpacity": 80, "lineWidth": 1, "showPoints": "never",
                    "barAlignment": 0, "spanNulls": False, "thresholdsStyle": {"mode": "area"}}),
        overrides=[_by_name("WHO 24-hour guideline", color={"mode": "fixed", "fixedColor": "text"}, **{
            "custom.drawStyle": "line", "custom.lineWidth": 2, "custom.fillOpacity": 0,
            "custom.lineStyle": {"fill": "dash", "dash": [10, 10]}})],
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                 "tooltip": {"mode": "multi", "sort": "none"}},
    )
    pm10 = panel(
        "timeseries", "PM10",
        """Coarser particles, up to 10 micrometres (dust, pollen, road and construction dust),
        as the sensor reports them. Optical sensors see large particles poorly: read PM10 as a
        trend, not an exact level.""",
        [influxql(q('mean("pm10_atm")'), alias="sensor $tag_channel")],
        width=8, height=8, field_config=_pm_defaults(),
    )
    rh = panel(
        "timeseries", "Relative humidity",
        """Humidity measured inside the station's sensor housing. In humid air particles take up
        water and low-cost sensors read high: the correction allows for it, and readings above
        85 % are flagged.""",
        [influxql(q('mean("rh")'), alias="sensor $tag_channel")],
        width=8, height=8, field_config={**_pm_defaults(), "unit": "humidity", "max": 100, "decimals": 0},
    )
    temp = panel(
        "timeseries", "Temperature",
        """Temperature inside the sensor housing; sun on the housing makes it read above the air
        temperature.""",
        [influxql(q('mean("temp")'), alias="sensor $tag_channel")],
        width=8, height=8, field_config={**_pm_defaults(), "unit": "celsius", "min": None},
    )
    coverage = panel(
        "timeseries", "Data coverage over time",
        """The share of each interval covered by readings, per sensor. Dips mean the station was
        off, offline, or its sensor sent too few samples.""",
        [influxql(q('sum("window") * 100000 / $__interval_ms',
                    'GROUP BY time($__interval), "channel" fill(0)'), alias="sensor $tag_channel")],
        width=24, height=6,
        field_config={**_pm_defaults(), "unit": "percent", "decimals": 0, "max": 100},
    )
    variable = query_variable(
        "station", "Station", 'SHOW TAG VALUES FROM "pm" WITH KEY = "station"',
        "The station to show: every station that has sent a reading.")
    return dashboard(
        STATION_UID, "Air quality: station",
        f"""One station in detail: corrected and raw PM2.5, PM10, humidity, temperature, daily means
        against the WHO guideline, and how complete its data are. {SENSOR_CAVEAT}""",
        [now, day, last_seen, coverage_total, corrected_vs_raw, daily, pm10, rh, temp, coverage],
        tags=TAGS, variables=[variable], links=_links(), time_from="now-7d",
    )


# -- Network health -----------------------------------------------------------------------------


def network() -> dict:
    counts = {"unit": "none", "decimals": 0, "color": {"mode": "fixed", "fixedColor": "text"}}
    online = panel(
        "stat", "Stations online",
        f"Stations that sent at least one reading in the last {ONLINE_WINDOW[:-1]} minutes.",
        [influxql(f'SELECT count("recent") AS "online" FROM (SELECT count("n") AS "recent" FROM "pm" '
                  f'WHERE time > now() - {ONLINE_WINDOW} GROUP BY "station")')],
        width=6, height=5, field_config={**counts, "color": {"mode": "fixed", "fixedColor": "green"},
                                         "noValue": "0"},
        options=_stat_options(color_mode="value"),
    )
    offline = panel(
        "stat", "Stations offline",
        f"""Stations that have reported before but sent nothing in the last {ONLINE_WINDOW[:-1]}
        minutes. They keep their readings and send them when they reconnect.""",
        [influxql('SELECT count("known") - count("recent") AS "offline" FROM '
                  '(SELECT last("n") AS "known" FROM "pm" GROUP BY "station"), '
                  f'(SELECT count("n") AS "recent" FROM "pm" WHERE time > now() - {ONLINE_WINDOW} '
                  'GROUP BY "station")')],
        width=6, height=5,
        field_config={**counts, "color": {"mode": "thresholds"},
                      "thresholds": thresholds(("green", None), ("orange", 1)), "noValue": "0"},
        options=_stat_options(color_mode="value"),
    )
    known = panel(
        "stat", "Stations ever seen",
        "Every station that has sent at least one reading.",
        [influxql('SELECT count("known") AS "known" FROM (SELECT last("n") AS "known" FROM "pm" '
                  'GROUP BY "station")')],
        width=6, height=5, field_config=counts, options=_stat_options(color_mode="value"),
    )
    last_hour = panel(
        "stat", "Readings stored, last hour",
        "Readings written to the database in the last hour, all stations and sensors together.",
        [influxql('SELECT count("n") AS "readings" FROM "pm" WHERE time > now() - 1h')],
        width=6, height=5, field_config={**counts, "noValue": "0"}, options=_stat_options(color_mode="value"),
    )
    presence = panel(
        "state-timeline", "Stations reporting",
        """One line per station: green while it is sending readings, red where an interval has
        none. Gaps that turn green again later were usually filled by the station replaying what
        it stored while offline.""",
        [influxql('SELECT count("n") FROM "pm" WHERE $timeFilter '
                  'GROUP BY time($__interval), "station" fill(0)', alias="$tag_station")],
        width=24, height=10,
        field_config={"color": {"mode": "thresholds"}, "thresholds": thresholds(("red", None), ("green", 1)),
                      "mappings": [
                          {"type": "value", "options": {"0": {"text": "no readings", "index": 0}}},
                          {"type": "range", "options": {"from": 1, "to": None,
                                                        "result": {"text": "reporting", "index": 1}}}],
                      "custom": {"lineWidth": 0, "fillOpacity": 80}},
        options={"showValue": "never", "mergeValues": True, "alignValue": "left", "rowHeight": 0.9,
                 "legend": {"showLegend": False}},
    )
    coverage = panel(
        "bargauge", "Coverage per station",
        """The share of the selected time range covered by each station's readings, per sensor.
        Below 75 % the station's averages become unreliable.""",
        [influxql('SELECT sum("window") * 100000 / $__range_ms FROM "pm" WHERE $timeFilter '
                  'GROUP BY "station", "channel"', alias="$tag_station $tag_channel")],
        width=12, height=10,
        field_config={"unit": "percent", "decimals": 0, "min": 0, "max": 100, "color": {"mode": "thresholds"},
                      "thresholds": thresholds(("red", None), ("orange", 75), ("green", 90))},
        options={"orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                 "valueMode": "color", "namePlacement": "auto", "sizing": "auto", "minVizHeight": 10,
                 "minVizWidth": 0, "maxVizHeight": 300},
    )
    per_minute = panel(
        "timeseries", "Readings stored per minute",
        """How many readings reach the database each minute, all stations together. A steady line
        is one reading per sensor per minute; a burst is stations catching up after an outage.""",
        [influxql('SELECT count("n") * 60000 / $__interval_ms AS "readings per minute" FROM "pm" '
                  'WHERE $timeFilter GROUP BY time($__interval) fill(0)')],
        width=12, height=10,
        field_config={"unit": "none", "decimals": 0, "min": 0, "color": {"mode": "palette-classic"},
                      "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                 "showPoints": "never"}},
    )
    flag_targets = [
        influxql(f'SELECT mean("flag") * 100 / {int(bit)} FROM (SELECT "qc" & {int(bit)} AS "flag" FROM "pm" '
                 f"WHERE $timeFilter) WHERE $timeFilter GROUP BY time($__interval) fill(none)", alias=label)
        for bit, label, _ in aqi.qc_flags()
    ]
    flags_md = "; ".join(f"{label}: {explanation}" for _, label, explanation in aqi.qc_flags())
    flags = panel(
        "timeseries", "Share of readings flagged, by quality check",
        f"""The percentage of readings in each interval that a quality check flagged. Flagged
        readings are kept and published with their flags, never deleted. The checks are:
        {flags_md}.""",
        flag_targets, width=24, height=10,
        field_config={"unit": "percent", "decimals": 1, "min": 0, "max": 100,
                      "color": {"mode": "palette-classic"},
                      "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0,
                                 "showPoints": "never"}},
        options={"legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                            "calcs": ["mean", "max"]},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
    )
    return dashboard(
        NETWORK_UID, "Air quality: network health",
        """Is the network working? Stations online and offline, how complete each station's data
        are, how often each quality check fires, and how many readings are stored.""",
        [online, offline, known, last_hour, presence, coverage, per_minute, flags],
        tags=TAGS, links=_links(), time_from="now-24h",
    )


#: file name (without .json) -> builder
BOARDS: dict[str, Callable[[], dict]] = {
    "overview": overview,
    "station": station,
    "network-health": network,
}
