"""What the three boards share: uids, links, wording, and the stat and PM time-series panels."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.grafana import UNIT_UG_M3, InfluxQL, colour, dashboard_link, datasource, prose, queries

#: A station that has sent nothing for this long is shown as offline. Bridges send a
#: reading per 60 s window; 15 minutes tolerates a few lost windows and a slow replay.
ONLINE_WINDOW = "15m"
ONLINE_MINUTES = ONLINE_WINDOW[:-1]
TAGS = ["civicair", "air quality"]

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


def stat_panel(title: str, description: str, target: InfluxQL, *, width: int = 6, height: int = 5,
               calc: str = "lastNotNull", fields: str = "",
               color_mode: cm.BigValueColorMode = cm.BigValueColorMode.BACKGROUND) -> stat.Panel:
    """One big number; the field settings (unit, colours, no-value text) are chained on."""
    return (stat.Panel().title(title).description(prose(description)).datasource(datasource())
            .targets(queries(target)).span(width).height(height)
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
