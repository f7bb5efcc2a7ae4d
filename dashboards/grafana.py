"""Small builders for Grafana dashboard JSON: plain dicts, no Grafana client.

Only what the civicair dashboards use. Each builder returns the dict Grafana 11
stores for that object (schemaVersion :data:`SCHEMA_VERSION`); newer Grafana
migrates it on load. Layout is computed: :func:`dashboard` places panels left to
right in rows of 24 grid columns and numbers them, so no id or position is
written by hand.
"""

from __future__ import annotations

from typing import Any

from dashboards import DATASOURCE_TYPE, DATASOURCE_UID

SCHEMA_VERSION = 39
#: Grafana's unit id for µg/m³ (category "Concentration").
UNIT_UG_M3 = "conμgm3"


def datasource() -> dict[str, str]:
    return {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


def influxql(query: str, *, alias: str | None = None, table: bool = False) -> dict[str, Any]:
    """A raw InfluxQL target. ``refId`` is filled in by :func:`panel`."""
    target: dict[str, Any] = {
        "datasource": datasource(),
        "query": " ".join(query.split()),
        "rawQuery": True,
        "resultFormat": "table" if table else "time_series",
    }
    if alias:
        target["alias"] = alias
    return target


def panel(kind: str, title: str, description: str, targets: list[dict], *, width: int = 12,
          height: int = 8, field_config: dict | None = None, overrides: list | None = None,
          options: dict | None = None, transformations: list | None = None, **extra: Any) -> dict:
    """A panel; ``width`` and ``height`` are in grid units (24 across)."""
    refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return {
        "type": kind,
        "title": title,
        "description": " ".join(description.split()),
        "datasource": datasource(),
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
        "targets": [{**t, "refId": refs[i]} for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": field_config or {}, "overrides": overrides or []},
        "options": options or {},
        "transformations": transformations or [],
        **extra,
    }


def text(title: str, markdown: str, *, width: int = 24, height: int = 6) -> dict:
    return {
        "type": "text",
        "title": title,
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
        "options": {"mode": "markdown", "content": markdown.strip() + "\n"},
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}}


def thresholds(*steps: tuple[str, float | None]) -> dict:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def join_by_station(mode: str = "outer") -> dict:
    return {"id": "joinByField", "options": {"byField": "station", "mode": mode}}


def drop_fields(ref_id: str, *names: str) -> dict:
    """Hide fields of one query's frames only (Grafana 10.4+ transformation filter)."""
    return {
        "id": "organize",
        "filter": {"id": "byRefId", "options": ref_id},
        "options": {"excludeByName": {n: True for n in names}},
    }


def query_variable(name: str, label: str, query: str, description: str) -> dict:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": datasource(),
        "query": query,
        "definition": query,
        "refresh": 1,  # on dashboard load: a new station appears without a rebuild
        "sort": 1,
        "multi": False,
        "includeAll": False,
        "current": {},
        "options": [],
        "hide": 0,
    }


def dashboard(uid: str, title: str, description: str, panels: list[dict], *, tags: list[str],
              time_from: str = "now-24h", refresh: str = "1m", variables: list[dict] | None = None,
              links: list[dict] | None = None) -> dict:
    """A dashboard with computed panel ids and grid positions.

    Panels are packed as Grafana itself would let them fall: each goes to the highest
    free place, leftmost first, so a tall panel on the left and two short ones stacked
    on its right need no coordinates.
    """
    skyline = [0] * 24  # lowest free y of each grid column
    placed = []
    for number, p in enumerate(panels, 1):
        p = {"id": number, **p}
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row":
            x, y = 0, max(skyline)
        else:
            y, x = min((max(skyline[x:x + w]), x) for x in range(0, 25 - w))
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        skyline[x:x + w] = [y + h] * w
        if p["type"] == "row":
            skyline = [y + h] * 24
        placed.append(p)
    return {
        "uid": uid,
        "title": title,
        "description": " ".join(description.split()),
        "tags": tags,
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "liveNow": False,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "templating": {"list": variables or []},
        "links": links or [],
        "panels": placed,
    }


def dashboard_link(title: str, uid: str, *, keep_time: bool = True, keep_vars: bool = False) -> dict:
    return {"title": title, "type": "link", "url": f"/d/{uid}", "icon": "dashboard",
            "keepTime": keep_time, "includeVars": keep_vars, "targetBlank": False, "tags": [],
            "asDropdown": False, "tooltip": ""}
