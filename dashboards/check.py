"""``civicair dashboards check``: validate the dashboard JSON, then run every query.

Static checks (no database): each file parses; dashboard uids are unique; each has a
``schemaVersion``; panel ids are unique; every datasource reference names the
provisioned datasource uid (or Grafana's built-in one); every target is a raw InfluxQL
query with a unique refId; every variable a query uses is defined or is one of
Grafana's own; every data panel explains itself in a description.

Query checks: each dashboard's variables are resolved by running their queries (the
first value is taken, as Grafana does when none is saved), then each panel target is
expanded with :mod:`dashboards.macros` over the dashboard's default time range (or the
panel's relative-time override) and run against InfluxDB. A target passes with at
least one row holding a value, reports "no rows" when it ran but found nothing, and
fails on an error or an unresolved variable.

A target switched on and off by the range's length (``$__range_s > 172800``: raw readings
for short ranges, the rollups for long ones) runs over the board's range when it is on
there; else it runs over the board's range first, where it must return no rows (InfluxDB
folds the false comparison; one that does not fails the check), then over a range it is on
for (:meth:`dashboards.macros.RangeSwitch.example_span_s`). So the short and the long form
of every panel run, on and off. The static checks require that as many targets of such a
panel are on at every range length, and at least one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from civicair.influx import Influx, InfluxError
from dashboards import JSON_DIR, PROVISIONING_DIR
from dashboards.macros import (
    Context,
    MacroError,
    TimeRange,
    Variable,
    calculate_interval,
    expand,
    parse_duration_ms,
    range_switch,
    referenced,
    template_replace,
    unresolved,
)

#: Variables Grafana defines itself (global, time and InfluxDB macros).
BUILTIN_VARIABLES = frozenset({
    "timeFilter", "interval", "__interval", "__interval_ms", "__from", "__to", "__range", "__range_s",
    "__range_ms", "__dashboard", "__org", "__user", "__name", "__timezone", "__rate_interval",
})
#: Datasource uids Grafana always has.
BUILTIN_DATASOURCES = frozenset({"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --"})
NON_DATA_PANELS = frozenset({"row", "text", "news", "dashlist", "welcome"})

PASS, NO_ROWS, FAIL = "pass", "no rows", "fail"


@dataclass(slots=True)
class Finding:
    dashboard: str
    where: str  # panel title and refId, a variable, or the dashboard itself
    status: str
    detail: str = ""
    query: str = ""


@dataclass(slots=True)
class Report:
    findings: list[Finding] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)

    def ok(self, require_rows: bool = False) -> bool:
        return self.count(FAIL) == 0 and (not require_rows or self.count(NO_ROWS) == 0)

    def lines(self, verbose: bool = False) -> list[str]:
        out = []
        for f in self.findings:
            label = {PASS: "PASS", NO_ROWS: "NO ROWS", FAIL: "FAIL"}[f.status]
            line = f"{label:8} {f.dashboard} › {f.where}"
            if f.detail:
                line += f": {f.detail}"
            out.append(line)
            if f.query and (verbose or f.status != PASS):
                out.append(f"         query: {f.query}")
        out.append(f"{self.count(PASS)} passed, {self.count(NO_ROWS)} without rows, "
                   f"{self.count(FAIL)} failed")
        return out


# -- loading ---------------------------------------------------------------------------------


def load_dashboards(json_dir: Path = JSON_DIR) -> tuple[dict[str, dict], list[Finding]]:
    boards, problems = {}, []
    for path in sorted(Path(json_dir).glob("*.json")):
        try:
            boards[path.stem] = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(Finding(path.name, "file", FAIL, f"not valid JSON: {exc}"))
    if not boards and not problems:
        problems.append(Finding(str(json_dir), "directory", FAIL, "no dashboard JSON found"))
    return boards, problems


@dataclass(frozen=True, slots=True)
class ProvisionedDatasource:
    uid: str
    min_interval_ms: int


def provisioned_datasources(provisioning_dir: Path = PROVISIONING_DIR) -> dict[str, ProvisionedDatasource]:
    import yaml

    out = {}
    for path in sorted((Path(provisioning_dir) / "datasources").glob("*.y*ml")):
        for ds in (yaml.safe_load(path.read_text()) or {}).get("datasources", []) or []:
            interval = (ds.get("jsonData") or {}).get("timeInterval")
            out[ds["uid"]] = ProvisionedDatasource(ds["uid"], parse_duration_ms(interval) if interval else 0)
    return out


def iter_panels(board: dict) -> Iterator[dict]:
    for p in board.get("panels", []):
        yield p
        yield from p.get("panels", []) or []  # panels inside a collapsed row


# -- static checks -----------------------------------------------------------------------------


def _datasource_problem(ref: Any, variables: set[str], uids: set[str]) -> str | None:
    if ref is None:
        return None
    if isinstance(ref, str):
        return f"datasource given by name {ref!r}: use a {{type, uid}} reference"
    uid = ref.get("uid")
    if uid is None:
        return "datasource reference without a uid"
    if uid.startswith("$"):
        name = uid.strip("${}")
        return None if name in variables else f"datasource variable {uid} is not defined"
    if uid in uids or uid in BUILTIN_DATASOURCES:
        return None
    return f"datasource uid {uid!r} is not provisioned (provisioned: {', '.join(sorted(uids)) or 'none'})"


def _switch_problem(queries: list[str]) -> str | None:
    """Where a panel's ``$__range_s`` switches leave a range without a query, or switch a
    series on one side of a bound but not the other (the queries on must be as many at every
    range length); None for a panel without switches."""
    switches = [range_switch(q) for q in queries]
    if all(sw is None for sw in switches):
        return None
    bounds = {b for sw in switches if sw is not None for _, b in sw.comparisons}
    spans = sorted({1, 366 * 86400} | bounds | {b + 1 for b in bounds})
    on = {span_s: sum(1 for sw in switches if sw is None or sw.on(span_s)) for span_s in spans}
    for span_s, n in on.items():
        if n == 0:
            return f"no query is on for a range of {span_s} s: its $__range_s switches leave a gap"
    if len(set(on.values())) > 1:
        (a, na), (b, nb) = min(on.items(), key=lambda kv: kv[1]), max(on.items(), key=lambda kv: kv[1])
        return (f"{na} of its queries are on for a range of {a} s but {nb} for {b} s: a series "
                "is missing on one side of a $__range_s switch")
    return None


def validate(boards: dict[str, dict], datasources: dict[str, ProvisionedDatasource]) -> list[Finding]:
    problems: list[Finding] = []
    uids = set(datasources)
    seen_uids: dict[str, str] = {}
    for name, board in boards.items():
        def fail(where: str, detail: str, query: str = "", _name: str = name) -> None:
            problems.append(Finding(_name, where, FAIL, detail, query))

        uid = board.get("uid")
        if not uid:
            fail("dashboard", "no uid")
        elif uid in seen_uids:
            fail("dashboard", f"uid {uid!r} is also used by {seen_uids[uid]}")
        else:
            seen_uids[uid] = name
        if not isinstance(board.get("schemaVersion"), int) or board["schemaVersion"] < 1:
            fail("dashboard", "schemaVersion is not set")
        if not board.get("title"):
            fail("dashboard", "no title")

        variables = board.get("templating", {}).get("list", [])
        names = [v.get("name") for v in variables]
        defined = {n for n in names if n}
        for dup in {n for n in names if names.count(n) > 1}:
            fail(f"variable ${dup}", "defined more than once")
        for var in variables:
            problem = _datasource_problem(var.get("datasource"), defined, uids)
            if problem:
                fail(f"variable ${var.get('name')}", problem)
            if var.get("type") == "query":
                query = var.get("query")
                query = query.get("query") if isinstance(query, dict) else query
                if not query:
                    fail(f"variable ${var.get('name')}", "query variable without a query")
                else:
                    missing = referenced(query) - defined - BUILTIN_VARIABLES
                    if missing:
                        fail(f"variable ${var.get('name')}",
                             f"uses undefined ${', $'.join(sorted(missing))}", query)
        for ann in board.get("annotations", {}).get("list", []):
            problem = _datasource_problem(ann.get("datasource"), defined, uids)
            if problem:
                fail(f"annotation {ann.get('name')!r}", problem)

        ids: set[int | None] = set()
        for panel in iter_panels(board):
            where = f"panel {panel.get('title')!r}"
            if not panel.get("type"):
                fail(where, "no panel type")
            if panel.get("id") in ids:
                fail(where, f"panel id {panel.get('id')} used twice")
            ids.add(panel.get("id"))
            if "gridPos" not in panel:
                fail(where, "no gridPos")
            if panel.get("type") in NON_DATA_PANELS:
                continue
            if not (panel.get("description") or "").strip():
                fail(where, "no description: every public panel explains itself")
            problem = _datasource_problem(panel.get("datasource"), defined, uids)
            if problem:
                fail(where, problem)
            refs = [t.get("refId") for t in panel.get("targets", [])]
            if not refs:
                fail(where, "no queries")
            for dup in {r for r in refs if refs.count(r) > 1}:
                fail(where, f"refId {dup} used twice")
            for t in panel.get("targets", []):
                tw = f"{where} [{t.get('refId')}]"
                problem = _datasource_problem(t.get("datasource"), defined, uids)
                if problem:
                    fail(tw, problem)
                if not t.get("rawQuery") or not (t.get("query") or "").strip():
                    fail(tw, "not a raw InfluxQL query (the check runs raw queries only)")
                    continue
                missing = referenced(t["query"]) - defined - BUILTIN_VARIABLES
                if missing:
                    fail(tw, f"uses undefined ${', $'.join(sorted(missing))}", t["query"])
            problem = _switch_problem([t["query"] for t in panel.get("targets", [])
                                       if t.get("query") and not t.get("hide")])
            if problem is not None:
                fail(where, problem)
            if panel.get("timeFrom"):
                try:
                    parse_duration_ms(panel["timeFrom"])
                except MacroError as exc:
                    fail(where, f"timeFrom: {exc}")
    return problems


# -- running queries ----------------------------------------------------------------------------


def _rows(results: list[dict]) -> int:
    """Rows with at least one non-null value besides time, over every statement and series."""
    rows = 0
    for result in results:
        for s in result.get("series", []) or []:
            cols = s.get("columns", [])
            keep = [i for i, c in enumerate(cols) if c != "time"]
            rows += sum(1 for v in s.get("values", []) if any(v[i] is not None for i in keep))
    return rows


def _variable_values(results: list[dict]) -> list[str]:
    """What Grafana's InfluxDB metricFindQuery takes from a result: the ``value`` column of
    SHOW TAG VALUES, else the first column that is not time."""
    values: list[str] = []
    for result in results:
        for s in result.get("series", []) or []:
            cols = s.get("columns", [])
            idx = cols.index("value") if "value" in cols else next(
                (i for i, c in enumerate(cols) if c != "time"), None)
            if idx is None:
                continue
            values += [str(v[idx]) for v in s.get("values", []) if v[idx] is not None]
    return list(dict.fromkeys(values))


def _panel_width_px(panel: dict) -> int:
    # Grafana sends the panel's width in pixels as maxDataPoints; on a 1920 px screen one
    # of the 24 grid columns is about 75 px wide.
    return max(1, int(panel.get("gridPos", {}).get("w", 24)) * 75)


def run_queries(boards: dict[str, dict], influx: Influx, datasources: dict[str, ProvisionedDatasource],
                *, now_ms: int | None = None, overrides: dict[str, str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    overrides = overrides or {}
    default_min = max((d.min_interval_ms for d in datasources.values()), default=0)

    def run(name: str, where: str, query: str, ctx: Context) -> tuple[Finding, list[dict]]:
        expanded = expand(query, ctx)
        left = unresolved(expanded)
        if left:
            return Finding(name, where, FAIL, f"unresolved ${', $'.join(sorted(left))}", expanded), []
        try:
            results = influx.query(expanded, epoch="ms")
        except InfluxError as exc:
            return Finding(name, where, FAIL, str(exc), expanded), []
        rows = _rows(results)
        status = PASS if rows else NO_ROWS
        return Finding(name, where, status, f"{rows} row{'s' if rows != 1 else ''}", expanded), results

    for name, board in boards.items():
        time = board.get("time", {})
        board_range = TimeRange.relative(time.get("from", "now-6h"), time.get("to", "now"), now_ms)
        variables: dict[str, Variable] = {}
        for var in board.get("templating", {}).get("list", []):
            vname, kind = var.get("name"), var.get("type")
            values: list[str] = []
            if kind == "query":
                query: Any = var.get("query")  # board JSON: a string, or a dict holding one
                query = query.get("query") if isinstance(query, dict) else query
                if isinstance(query, str) and query.strip():  # else validate() reported it
                    ctx = Context(board_range, calculate_interval(board_range, 1000, default_min), variables)
                    finding, results = run(name, f"variable ${vname}", query, ctx)
                    findings.append(finding)
                    values = _variable_values(results)
            elif kind == "custom":
                text = template_replace(var.get("query", ""), variables, board_range)
                values = [v.strip() for v in text.split(",")]
            elif kind in ("constant", "textbox"):
                values = [var.get("query", "")]
            elif kind == "interval":
                values = [v.strip() for v in var.get("query", "").split(",")][:1]
            current = (var.get("current") or {}).get("value")
            if vname in overrides:
                chosen = [overrides[vname]]
            elif isinstance(current, str) and current in values:
                chosen = [current]
            elif isinstance(current, list) and current and set(current) <= set(values):
                chosen = current
            else:
                chosen = values[:1]
            variables[vname] = Variable(vname, tuple(chosen), bool(var.get("multi")),
                                        bool(var.get("includeAll")))

        for panel in iter_panels(board):
            if panel.get("type") in NON_DATA_PANELS:
                continue
            time_range = board_range
            if panel.get("timeFrom"):
                span = parse_duration_ms(panel["timeFrom"])
                time_range = TimeRange(board_range.to_ms - span, board_range.to_ms)
            min_interval = parse_duration_ms(panel["interval"]) if panel.get("interval") else default_min
            points = int(panel.get("maxDataPoints") or _panel_width_px(panel))
            for t in panel.get("targets", []):
                if t.get("hide") or not t.get("rawQuery") or not t.get("query"):
                    continue
                where = f"{panel.get('title')} [{t.get('refId')}]"
                ctx = Context(time_range, calculate_interval(time_range, points, min_interval), variables)
                switch = range_switch(t["query"])
                off: Finding | None = None
                if switch is not None and not switch.on(round(time_range.span_ms / 1000)):
                    # Off at the board's range: InfluxDB must fold the false comparison and
                    # return nothing. Then run it over a range it is on for, ending at the same
                    # moment.
                    off, results = run(name, where, t["query"], ctx)
                    if off.status == PASS:
                        off = Finding(name, where, FAIL, f"switched off by $__range_s but returned "
                                      f"{off.detail}: the InfluxDB does not fold the switch", off.query)
                    span_s = switch.example_span_s()
                    if off.status == FAIL or span_s is None:
                        findings.append(off if off.status == FAIL else Finding(
                            name, where, FAIL, "its $__range_s switch is never on", t["query"]))
                        continue
                    on_range = TimeRange(time_range.to_ms - span_s * 1000, time_range.to_ms)
                    ctx = Context(on_range, calculate_interval(on_range, points, min_interval), variables)
                    where += f" over {span_s} s"
                finding, _ = run(name, where, t["query"], ctx)
                if off is not None:
                    finding.detail += "; off over the board's range: no rows"
                findings.append(finding)
    return findings


def check(influx: Influx | None, json_dir: Path = JSON_DIR, provisioning_dir: Path = PROVISIONING_DIR,
          *, now_ms: int | None = None, overrides: dict[str, str] | None = None) -> Report:
    """Static checks, then (with ``influx``) every query. Never raises for a bad dashboard."""
    boards, problems = load_dashboards(json_dir)
    try:
        datasources = provisioned_datasources(provisioning_dir)
    except (OSError, ValueError, KeyError) as exc:
        datasources = {}
        problems.append(Finding(str(provisioning_dir), "provisioning", FAIL, f"unreadable: {exc}"))
    report = Report(problems + validate(boards, datasources))
    if influx is not None:
        report.findings += run_queries(boards, influx, datasources, now_ms=now_ms, overrides=overrides)
    return report


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--var takes NAME=VALUE, got {pair!r}")
        out[name] = value
    return out
