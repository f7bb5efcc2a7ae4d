"""The civicair pieces over Grafana's typed builders (``grafana-foundation-sdk``).

Panels, thresholds, field colours, overrides, variables and links are built with the
SDK's own builders and models (``grafana_foundation_sdk.builders.*``), which follow
Grafana's schema for the version we deploy (the SDK's 11.6 line, matching
``GRAFANA_VERSION`` in docker-compose.yml). This module adds what the SDK does not
have, and the few conventions every civicair board shares:

* :class:`InfluxQLQuery`: the SDK ships no query type for Grafana's InfluxDB
  datasource, so this is one, written the SDK's way (a ``Dataquery`` variant with
  ``to_json``/``from_json``, registered with the SDK's runtime by
  :func:`register_influxql` so a board read back with ``Dashboard.from_json`` keeps
  its targets typed);
* :func:`dashboard`: places panels as Grafana would let them fall (the SDK's own
  placement only fills rows left to right) and numbers them;
* :func:`as_json`: the dict ``civicair dashboards build`` writes.

What stays a plain dict is documented in docs/dashboards.md: the options of
transformations and the style of the geomap's marker layer, which the SDK types as
``object``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import DATASOURCE_TYPE, DATASOURCE_UID

#: Grafana's unit id for µg/m³ (category "Concentration").
UNIT_UG_M3 = "conμgm3"
GRID_COLUMNS = 24
_REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def prose(text: str) -> str:
    """A description written as an indented triple-quoted string, as one line."""
    return " ".join(text.split())


def datasource() -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


# -- InfluxQL targets ---------------------------------------------------------------------


@dataclass(slots=True)
class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target of Grafana's InfluxDB datasource (query language InfluxQL).

    The fields are those of the datasource's ``InfluxQuery`` that a raw query uses
    (Grafana's ``public/app/plugins/datasource/influxdb/types.ts``); the visual
    query editor's fields (``select``, ``groupBy`` …) are never written.
    """

    query: str
    ref_id: str = ""
    alias: str | None = None
    result_format: Literal["time_series", "table"] = "time_series"
    datasource: dm.DataSourceRef | None = None
    raw_query: bool = True

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id}
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        payload |= {"query": self.query, "rawQuery": self.raw_query, "resultFormat": self.result_format}
        if self.alias:
            payload["alias"] = self.alias
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(query=data.get("query", ""), ref_id=data.get("refId", ""), alias=data.get("alias"),
                   result_format=data.get("resultFormat", "time_series"),
                   datasource=dm.DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
                   raw_query=bool(data.get("rawQuery", False)))


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of :class:`InfluxQLQuery`, on the civicair datasource; whitespace is collapsed."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=" ".join(query.split()), datasource=datasource())

    def build(self) -> InfluxQLQuery:
        return self._internal

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        """Return rows as a table (``resultFormat: table``), e.g. one row per station."""
        self._internal.result_format = "table"
        return self

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self


def ref_id(index: int) -> str:
    """Grafana's refIds: A … Z, then AA, AB … (as its query editor names them)."""
    if index < len(_REF_IDS):
        return _REF_IDS[index]
    return ref_id(index // len(_REF_IDS) - 1) + _REF_IDS[index % len(_REF_IDS)]


def queries(*targets: InfluxQL) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    """A panel's targets, lettered A, B, … Z, AA, … in order."""
    return [t.ref_id(ref_id(i)) for i, t in enumerate(targets)]


def register_influxql() -> None:
    """Let the SDK's ``from_json`` decode InfluxDB targets as :class:`InfluxQLQuery`."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json))


# -- field configuration ------------------------------------------------------------------


def thresholds(*steps: tuple[str, float | None]) -> db.ThresholdsConfig:
    """Absolute threshold steps, ``(colour, lower bound)``; the first bound is None (from -∞)."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for c, v in steps])


def colour(mode: dm.FieldColorModeId, fixed: str | None = None) -> db.FieldColor:
    built = db.FieldColor().mode(mode)
    return built.fixed_color(fixed) if fixed is not None else built


def by_thresholds() -> db.FieldColor:
    return colour(dm.FieldColorModeId.THRESHOLDS)


def properties(**values: Any) -> list[dm.DynamicConfigValue]:
    """Override properties; ``custom.*`` ids are passed as ``**{"custom.lineWidth": 2}``.

    A value that is an SDK builder is built, so overrides take the same typed objects
    (thresholds, colours, line styles) as a panel's defaults.
    """
    return [dm.DynamicConfigValue(id_val=k, value=v.build() if isinstance(v, cogbuilder.Builder) else v)
            for k, v in values.items()]


# -- transformations (their options are untyped in Grafana's schema) -------------------------


def join_by_station(mode: Literal["outer", "inner"] = "outer") -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val="joinByField", options={"byField": "station", "mode": mode})


def drop_fields(ref_id: str, *names: str) -> dm.DataTransformerConfig:
    """Hide fields of one query's frames only (Grafana 10.4+ transformation filter)."""
    return dm.DataTransformerConfig(id_val="organize",
                                    filter_val=dm.MatcherConfig(id_val="byRefId", options=ref_id),
                                    options={"excludeByName": {n: True for n in names}})


def organize(order: Sequence[str], rename: dict[str, str]) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val="organize", options={
        "indexByName": {name: i for i, name in enumerate(order)}, "renameByName": rename,
        "excludeByName": {}})


# -- variables, links, the dashboard --------------------------------------------------------


def query_variable(name: str, label: str, query: str, description: str) -> db.QueryVariable:
    return (db.QueryVariable(name).label(label).description(description).datasource(datasource())
            .query(query)
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)  # a new station appears without a rebuild
            .sort(dm.VariableSort.ALPHABETICAL_ASC).multi(False).include_all(False)
            .hide(dm.VariableHide.DONT_HIDE).options([]))


def dashboard_link(title: str, uid: str, *, keep_time: bool = True,
                   keep_vars: bool = False) -> db.DashboardLink:
    return (db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(f"/d/{uid}").icon("dashboard")
            .keep_time(keep_time).include_vars(keep_vars).target_blank(False).tags([]).as_dropdown(False)
            .tooltip(""))


def _builtin_annotations() -> db.AnnotationQuery:
    return (db.AnnotationQuery().name("Annotations & Alerts").built_in(1).type("dashboard")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)"))


def place(panels: Sequence[cogbuilder.Builder[dm.Panel]]) -> None:
    """Number the panels and give each the highest free place, leftmost first.

    As Grafana itself lets panels fall: a tall panel on the left and two short ones
    stacked on its right need no coordinates. Each panel's width and height come from
    its builder (``.span()``, ``.height()``).
    """
    skyline = [0] * GRID_COLUMNS  # lowest free y of each grid column
    for number, builder in enumerate(panels, 1):
        panel = builder.build()
        if panel.grid_pos is None:
            raise ValueError(f"panel {panel.title!r} has no size: call .span() and .height()")
        w, h = panel.grid_pos.w, panel.grid_pos.h
        y, x = min((max(skyline[x:x + w]), x) for x in range(0, GRID_COLUMNS + 1 - w))
        panel.id_val = number
        panel.grid_pos.x, panel.grid_pos.y = x, y
        skyline[x:x + w] = [y + h] * w


def dashboard(uid: str, title: str, description: str, panels: Sequence[cogbuilder.Builder[dm.Panel]], *,
              tags: list[str], time_from: str = "now-24h", refresh: str = "1m",
              variables: Sequence[db.QueryVariable | db.ConstantVariable] = (),
              links: Sequence[db.DashboardLink] = ()) -> db.Dashboard:
    """A read-only public dashboard, its panels placed by :func:`place`."""
    place(panels)
    board = (db.Dashboard(title).uid(uid).description(prose(description)).tags(tags)
             .timezone("browser").readonly().tooltip(dm.DashboardCursorSync.CROSSHAIR).live_now(False)
             .refresh(refresh).version(1).time(time_from, "now").timepicker(db.TimePicker())
             .fiscal_year_start_month(0).week_start("").annotation(_builtin_annotations())
             .variables(list(variables)).links(list(links)))
    for panel in panels:
        board.with_panel(panel)
    return board


def as_json(board: db.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana stores it (plain JSON types only)."""
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))
