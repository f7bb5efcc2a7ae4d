"""The Overview board: a map of the current AQI (NowCast), the city-wide median, the stations table."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import geomap, table, text
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as gm
from grafana_foundation_sdk.models import text as tm

from dashboards import legend as aqi
from dashboards.boards._shared import (
    HOURLY_UP_TO_S,
    MEAN,
    ONLINE_MINUTES,
    ONLINE_WINDOW,
    OVERVIEW_UID,
    RAW_UP_TO_S,
    SENSOR_CAVEAT,
    TAGS,
    by_range,
    legend_below,
    links,
    nowcast_per_station,
    rollup_rp_variable,
    series_panel,
    stat_panel,
    tooltip_all,
)
from dashboards.grafana import (
    UNIT_UG_M3,
    InfluxQL,
    by_thresholds,
    dashboard,
    datasource,
    drop_fields,
    join_by_station,
    organize,
    properties,
    prose,
    queries,
)


def _marker_layer() -> cb.MapLayerOptions:
    # The SDK types a layer's ``config`` as ``object``: the markers layer's style is a dict,
    # its dimensions built with the SDK where their JSON is what Grafana writes. Not the
    # size: ScaleDimensionConfig always writes min and max (0 and 0 here), and Grafana
    # clamps a fixed size into them.
    style = {
        "color": cb.ColorDimensionConfig().field("NowCast").fixed("dark-green").build(),
        "opacity": 0.9,
        "size": {"fixed": 12},
        "symbol": cb.ResourceDimensionConfig().mode(cm.ResourceDimensionMode.FIXED)
        .fixed("img/icons/marker/circle.svg").build(),
        "symbolAlign": {"horizontal": "center", "vertical": "center"},
        "text": cb.TextDimensionConfig().mode(cm.TextDimensionMode.FIELD).field("name").fixed("").build(),
        "textConfig": {"fontSize": 11, "offsetX": 0, "offsetY": -14, "textAlign": "center",
                       "textBaseline": "bottom"},
    }
    return (cb.MapLayerOptions().type("markers").name("PM2.5 NowCast").tooltip(True)
            .location(cb.FrameGeometrySource().mode(cm.FrameGeometrySourceMode.COORDS)
                      .latitude("lat").longitude("lon"))
            .config({"showLegend": True, "style": style}))


def _map() -> geomap.Panel:
    positions = InfluxQL('SELECT last("lat") AS "lat", last("lon") AS "lon", last("name") AS "name" '
                         'FROM "station" GROUP BY "station"').table()
    return (
        geomap.Panel().title("Air quality now (NowCast) at each station").description(prose(f"""
        Each dot is a station, coloured by its current fine-particle (PM2.5) level, the
        NowCast, in the US Air Quality Index categories (see "What the colours mean"). Hover
        over a dot for the station's name, NowCast (µg/m³) and AQI. {aqi.NOWCAST} The map
        always shows now, whatever time range is selected; a station without a NowCast (no data
        in the last hours) or without a position is not shown. The latest 1-minute reading of
        each station is in the Stations table. {SENSOR_CAVEAT}"""))
        .datasource(datasource()).targets(queries(nowcast_per_station(), positions)).span(16).height(17)
        .unit(UNIT_UG_M3).decimals(1).color_scheme(by_thresholds()).thresholds(aqi.thresholds())
        .override_by_name("AQI", properties(unit="none", decimals=0, thresholds=aqi.aqi_thresholds(),
                                            mappings=aqi.aqi_mappings()))
        .transformations([drop_fields("A", "Time"), drop_fields("B", "Time"), join_by_station("inner")])
        .view(geomap.MapViewConfig().id("fit").all_layers(True).lat(0).lon(0).zoom(12).padding(20))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(False).show_attribution(True)
                  .show_scale(True))
        .basemap(cb.MapLayerOptions().type("default").name("Basemap").config({}))
        .layers([_marker_layer()])
        .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS))
    )


def _stations_table() -> table.Panel:
    status_mappings: list[dm.ValueMapping] = [
        dm.SpecialValueMap(options=dm.DashboardSpecialValueMapOptions(
            match=dm.SpecialValueMatch.NULL,
            result=dm.ValueMappingResult(text="offline", color="red", index=0))),
        dm.RangeMap(options=dm.DashboardRangeMapOptions(
            from_val=1, to=None, result=dm.ValueMappingResult(text="online", color="green", index=1))),
    ]
    return (
        table.Panel().title("Stations").description(prose(f"""
        Every station that has ever reported: its current AQI and the NowCast it comes from
        (blank while the station has none: it needs data in 2 of the last 3 hours), its latest
        1-minute PM2.5 reading, how long ago that was, and whether it is online (at least one
        reading in the last {ONLINE_MINUTES} minutes). {aqi.NOWCAST}
        An offline station may have lost power or Wi-Fi; its readings are kept on the station and
        arrive when it reconnects. Click a column header to sort."""))
        .datasource(datasource()).span(24).height(10)
        .targets(queries(
            InfluxQL('SELECT last("pm25") AS "pm25" FROM "pm" GROUP BY "station"').table(),
            InfluxQL(f'SELECT count("n") AS "recent" FROM "pm" WHERE time > now() - {ONLINE_WINDOW} '
                     'GROUP BY "station"').table(),
            InfluxQL('SELECT last("name") AS "name" FROM "station" GROUP BY "station"').table(),
            nowcast_per_station(),
        ))
        .align(cm.FieldTextAlignment.AUTO).cell_options(cm.TableAutoCellOptions()).filterable(False)
        .override_by_name("AQI (NowCast)", properties(
            unit="none", decimals=0, thresholds=aqi.aqi_thresholds(), mappings=aqi.aqi_mappings(),
            color=by_thresholds(),
            **{"custom.cellOptions": cm.TableColoredBackgroundCellOptions()}))
        .override_by_name("NowCast PM2.5 (µg/m³)", properties(
            unit=UNIT_UG_M3, decimals=1, thresholds=aqi.thresholds(), color=by_thresholds(),
            **{"custom.cellOptions": cm.TableColorTextCellOptions()}))
        .override_by_name("PM2.5, latest minute (µg/m³)", properties(
            unit=UNIT_UG_M3, decimals=1, thresholds=aqi.thresholds(), color=by_thresholds(),
            **{"custom.cellOptions": cm.TableColorTextCellOptions()}))
        .override_by_name("Last reading", properties(unit="dateTimeFromNow"))
        .override_by_name("Status", properties(
            mappings=status_mappings, **{"custom.cellOptions": cm.TableColorTextCellOptions()}))
        .transformations([
            drop_fields("B", "Time"),
            drop_fields("C", "Time"),
            drop_fields("D", "Time"),
            join_by_station("outer"),
            organize(["name", "station", "AQI", "NowCast", "pm25", "Time", "recent"],
                     {"name": "Name", "station": "Station id", "AQI": "AQI (NowCast)",
                      "NowCast": "NowCast PM2.5 (µg/m³)", "pm25": "PM2.5, latest minute (µg/m³)",
                      "Time": "Last reading", "recent": "Status"}),
        ])
        .show_header(True).cell_height(cm.TableCellHeight.SM)
        .footer(cb.TableFooterOptions().show(False))
        .sort_by([cb.TableSortByFieldState().display_name("Name").desc(False)])
    )


def overview() -> db.Dashboard:
    nowcast = nowcast_per_station().build().query
    city_now = (
        stat_panel("City-wide air quality now (NowCast)", f"""
        The middle value (median) over every station with a current NowCast: its AQI and its
        PM2.5 in µg/m³, coloured by US AQI category. Half the stations read more, half less; one
        faulty or unusually placed sensor cannot move it much. {aqi.NOWCAST} Beside it, for
        comparison, the median of the stations' latest 1-minute readings (last {ONLINE_MINUTES}
        minutes), which moves faster and is noisier.""",
                   (InfluxQL(f'SELECT median("AQI") AS "AQI", median("NowCast") AS "NowCast (µg/m³)" '
                             f'FROM ({nowcast})'),
                    InfluxQL('SELECT median("pm25") AS "latest minute (µg/m³)" FROM (SELECT '
                             f'last("pm25") AS "pm25" FROM "pm" WHERE time > now() - {ONLINE_WINDOW} '
                             'GROUP BY "station")')),
                   width=8, height=6)
        .unit(UNIT_UG_M3).decimals(1).color_scheme(by_thresholds()).thresholds(aqi.thresholds())
        .override_by_name("AQI", properties(unit="none", decimals=0, thresholds=aqi.aqi_thresholds(),
                                            mappings=aqi.aqi_mappings()))
        .no_value("no station has a NowCast")
    )
    legend = text.Panel().title("What the colours mean").span(8).height(11).mode(tm.TextMode.MARKDOWN)
    legend.content(f"""
Fine particles (PM2.5) are particles smaller than 2.5 micrometres: they reach deep into the
lungs. Colours follow the US Air Quality Index categories for PM2.5 (2024 revision), which
are defined for **24-hour averages**; a single reading only gives an idea.

{aqi.legend_markdown()}

The World Health Organization recommends that the 24-hour average stay below
**{aqi.WHO_24H_UG_M3:g} µg/m³** (WHO air quality guidelines, 2021).
""".strip() + "\n")
    city_trend = (
        series_panel("City-wide PM2.5 over time", f"""
        The median of all stations' readings in each interval, over the selected time range.
        Daily patterns (traffic, heating, cooking) and pollution episodes show up here first.
        Over ranges longer than {RAW_UP_TO_S // 86400} days the line is the median of the
        stations' hourly means (longer than {HOURLY_UP_TO_S // 86400} days: daily means).""",
                     *by_range('SELECT median("pm25") AS "median of all stations" FROM "pm" '
                               'WHERE $timeFilter GROUP BY time($__interval) fill(none)',
                               f'SELECT median("{MEAN["pm25"]}") AS "median of all stations" '
                               'FROM {source} WHERE $timeFilter GROUP BY time({every}) fill(none)'),
                     width=24, height=8)
        .thresholds(aqi.thresholds()).legend(legend_below()).tooltip(tooltip_all())
    )
    return dashboard(
        OVERVIEW_UID, "Air quality: overview",
        f"""Fine-particle pollution (PM2.5) measured by volunteers' sensors across the city.
        {SENSOR_CAVEAT}""",
        [_map(), city_now, legend, _stations_table(), city_trend], tags=TAGS, links=links(),
        variables=[rollup_rp_variable()],
    )
