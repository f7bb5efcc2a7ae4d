"""Observations: the stored readings, read from InfluxDB page by page in time order.

A Datastream is one field (:data:`api.sta.model.OBSERVED_PROPERTIES`) of one station and
channel, so a page of Observations is one statement per property involved, sent in one
request, merged by (time, id). Paging is by key (the last (time, id) of a page, carried in
``$skiptoken``), so page 500 costs what page 1 costs. ``$filter`` is compiled: conditions on
``phenomenonTime``/``resultTime`` and ``result`` become InfluxQL (civicair/influxql.py builds
the text), conditions on ``Datastream/…`` or ``FeatureOfInterest/…`` pick the Datastreams
on the catalogue. Anything else is 501, so a page and ``@iot.count`` are always exact.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from api.sta import filter as sta_filter
from api.sta import ids, timeset
from api.sta.errors import bad_request, not_implemented
from api.sta.model import OBSERVED_PROPERTIES, PM25, Catalogue, Entity
from civicair import influxql
from civicair.influx import AsyncInflux, series
from civicair.schema import qc as qc_bits
from civicair.schema.timefmt import format_time

#: Names of the ``qc`` bits, by bit position (civicair.schema.qc ``Flag``).
QC_NAMES = {int(flag).bit_length() - 1: str(flag.name) for flag in qc_bits.Flag}
TIME_PATHS = {("phenomenonTime",), ("resultTime",)}
NAV_ROOTS = {"Datastream", "FeatureOfInterest"}
_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}
_NEGATE = {"lt": "ge", "le": "gt", "gt": "le", "ge": "lt", "eq": "ne", "ne": "eq"}
#: Types of the Observation paths a filter's type check knows (api.sta.filter.check_types).
OBS_PATH_TYPES: dict[tuple[str, ...], str] = {
    ("phenomenonTime",): "datetime", ("resultTime",): "datetime", ("result",): "number"}


def quality_names(qc: Any) -> list[str]:
    if not isinstance(qc, int) or isinstance(qc, bool):
        return []
    return [QC_NAMES.get(bit, f"BIT_{bit}") for bit in range(qc.bit_length()) if qc >> bit & 1]


@dataclass(slots=True)
class ObsFilter:
    """A ``$filter`` on Observations, split into what InfluxDB and the catalogue do."""

    time_parts: list[str] = field(default_factory=list)
    value: Any = None  # AST over ``result`` only
    scope: list[Any] = field(default_factory=list)  # ASTs over Datastream/… and FeatureOfInterest/…
    residual: Any = None  # AST InfluxDB cannot answer exactly: evaluated on each row (filtered_page)

    def value_condition(self, field_name: str) -> str | None:
        return None if self.value is None else _value_sql(self.value, field_name, negate=False)


def _value_sql(node: Any, field_name: str, negate: bool) -> str:
    kind = node[0]
    if kind == "not":
        return _value_sql(node[1], field_name, not negate)
    if kind == "op" and node[1] in ("and", "or"):
        op = node[1] if not negate else ("or" if node[1] == "and" else "and")
        return influxql.sta_bool(op, [_value_sql(node[2], field_name, negate),
                                      _value_sql(node[3], field_name, negate)])
    if kind == "op" and node[1] in influxql.STA_COMPARE:
        op = _NEGATE[node[1]] if negate else node[1]
        return influxql.sta_compare(op, _operand(node[2], field_name), _operand(node[3], field_name))
    raise not_implemented("conditions on result: comparisons, arithmetic, and/or/not")


def _operand(node: Any, field_name: str) -> str:
    kind = node[0]
    if kind == "path" and node[1] == ("result",):
        return influxql.sta_field(field_name)
    if kind == "lit" and isinstance(node[1], int | float) and not isinstance(node[1], bool):
        return influxql.number_literal(node[1])
    if kind == "neg":
        return influxql.sta_arith("sub", influxql.number_literal(0), _operand(node[1], field_name))
    if kind == "op" and node[1] in influxql.STA_ARITH:
        return influxql.sta_arith(node[1], _operand(node[2], field_name), _operand(node[3], field_name))
    raise not_implemented("result is compared with numbers (and arithmetic on them)")


def _row_path(p: tuple[str, ...]) -> bool:
    return p in TIME_PATHS or p == ("result",) or (p[0] in NAV_ROOTS and len(p) > 1)


def compile_filter(ast: Any) -> ObsFilter:
    sta_filter.check_types(ast, OBS_PATH_TYPES)
    out = ObsFilter()
    values, residual = [], []
    for conj in sta_filter.conjuncts(ast):
        used = sta_filter.paths(conj)
        if not used:
            raise not_implemented("a condition on Observations must name a property")
        if all(p in TIME_PATHS for p in used):
            parts, exact = timeset.time_parts(conj)
            out.time_parts += parts
            if not exact:
                residual.append(conj)
        elif all(p == ("result",) for p in used):
            values.append(conj)
        elif all(p[0] in NAV_ROOTS and len(p) > 1 for p in used):
            out.scope.append(conj)
        elif all(_row_path(p) for p in used):
            residual.append(conj)  # e.g. time or result: row by row, no condition for InfluxDB
        else:
            raise not_implemented("Observations filter on phenomenonTime, resultTime, result, Datastream/… "
                                  "and FeatureOfInterest/…")
    if residual:
        out.residual = _and(residual)
    for v in values:
        _value_sql(v, OBSERVED_PROPERTIES[0].field, negate=False)  # 501 now, not later
    if values:
        out.value = _and(values)
    return out


def _and(nodes: list[Any]) -> Any:
    node = nodes[0]
    for v in nodes[1:]:
        node = ("op", "and", node, v)
    return node


def parse_skiptoken(token: str | None) -> tuple[int, int] | None:
    if token is None:
        return None
    t, _, oid = token.partition(".")
    if not (t.isdigit() and oid.isdigit()):
        raise bad_request("$skiptoken must be copied from an @iot.nextLink")
    return int(t), int(oid)


@dataclass(slots=True)
class Row:
    """One Observation: a row of :func:`civicair.influxql.sta_observations` (or ``sta_latest``)."""

    t: int
    id: int
    ds: Entity
    raw: list[Any]
    cols: dict[str, int]  # column name -> position in ``raw``, shared by a result's rows

    @property
    def values(self) -> dict[str, Any]:
        return {name: self.raw[i] for name, i in self.cols.items()}


@lru_cache(maxsize=4096)
def _day(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))


def iso(t: int) -> str:
    """``format_time`` for whole seconds, several times faster (a page formats 20,000 of them)."""
    day, rest = divmod(t, 86400)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{_day(day)}{hour:02d}:{minute:02d}:{second:02d}Z"


def to_json(row: Row) -> dict[str, Any]:
    v = row.values
    window = v.get("window")
    t = row.t
    end = iso(t) if isinstance(t, int) else format_time(t)
    phenomenon = f"{iso(t - window)}/{end}" if isinstance(window, int) and window > 0 and isinstance(t, int) \
        else end
    qc = v.get("qc")
    parameters: dict[str, Any] = {"frames": v.get("n"), "window_s": window, "qc": qc}
    if row.ds.prop == PM25:
        parameters["correction"] = v.get("pm25_method")
    return {"phenomenonTime": phenomenon, "resultTime": end, "result": v.get("result"),
            "resultQuality": quality_names(qc) if qc else [], "validTime": None, "parameters": parameters}


def fragments(prefix: str, rows: list[Row]) -> list[orjson.Fragment]:
    """Each row as the JSON text of a whole Observation (see api/sta/engine.py)."""
    out = []
    dumps = orjson.dumps
    days: dict[int, str] = {}
    texts: dict[Any, str] = {}

    def number(x: Any) -> str:  # ints as Python writes them; anything else as orjson does
        return str(x) if type(x) is int else dumps(x).decode()

    for row in rows:
        t, raw, cols = row.t, row.raw, row.cols
        if not isinstance(t, int):
            out.append(orjson.Fragment(dumps(_whole(prefix, row))))
            continue
        window = raw[cols["window"]] if "window" in cols else None
        qc = raw[cols["qc"]] if "qc" in cols else None
        day, rest = divmod(t, 86400)
        date = days.get(day) or days.setdefault(day, _day(day))
        end = f"{date}{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}Z"
        if type(window) is int and 0 < window <= rest:  # the window starts the same day
            rest -= window
            phenomenon = f"{date}{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}Z/{end}"
        elif type(window) is int and window > 0:
            phenomenon = f"{iso(t - window)}/{end}"
        else:
            phenomenon = end
        link = f"{prefix}{row.id})"
        if row.ds.prop == PM25:
            method = raw[cols["pm25_method"]] if "pm25_method" in cols else None
            text = texts.get(method) or texts.setdefault(method, dumps(method).decode())
            correction = f',"correction":{text}'
        else:
            correction = ""
        n = raw[cols["n"]] if "n" in cols else None
        out.append(orjson.Fragment(
            f'{{"@iot.id":{row.id},"@iot.selfLink":"{link}","phenomenonTime":"{phenomenon}",'
            f'"resultTime":"{end}","result":{number(raw[cols["result"]])},'
            f'"resultQuality":{dumps(quality_names(qc)).decode() if qc else "[]"},"validTime":null,'
            f'"parameters":{{"frames":{number(n)},"window_s":{number(window)},"qc":{number(qc)}{correction}}},'
            f'"Datastream@iot.navigationLink":"{link}/Datastream",'
            f'"FeatureOfInterest@iot.navigationLink":"{link}/FeatureOfInterest"}}'))
    return out


def _whole(prefix: str, row: Row) -> dict[str, Any]:
    link = f"{prefix}{row.id})"
    return {"@iot.id": row.id, "@iot.selfLink": link, **to_json(row),
            "Datastream@iot.navigationLink": link + "/Datastream",
            "FeatureOfInterest@iot.navigationLink": link + "/FeatureOfInterest"}


def _by_field(datastreams: list[Entity], cat: Catalogue) -> dict[int, tuple[list[Entity], bool]]:
    """Datastreams grouped by property, and whether the group is every Datastream of it."""
    out: dict[int, list[Entity]] = {}
    for ds in datastreams:
        out.setdefault(ds.prop or 0, []).append(ds)
    every: dict[int, int] = {}
    for ds in cat.all("Datastream"):
        every[ds.prop or 0] = every.get(ds.prop or 0, 0) + 1
    return {p: (group, len(group) == every.get(p)) for p, group in out.items()}


#: Series one statement names; more are split over several statements.
SERIES_PER_STATEMENT = 50
#: Query text per InfluxDB request (a GET: its URL must stay short); more goes in parallel requests.
MAX_REQUEST_CHARS = 6000


def _chunks(group: list[Entity], every: bool) -> list[tuple[list[Entity], bool]]:
    if every or len(group) <= SERIES_PER_STATEMENT:
        return [(group, every)]
    return [(group[i:i + SERIES_PER_STATEMENT], False) for i in range(0, len(group), SERIES_PER_STATEMENT)]


async def _send(influx: AsyncInflux, stmts: list[str]) -> list[dict[str, Any]]:
    """Results of ``stmts`` in order, in as few requests as keep each one short."""
    batches: list[list[str]] = [[]]
    size = 0
    for stmt in stmts:
        if batches[-1] and size + len(stmt) > MAX_REQUEST_CHARS:
            batches.append([])
            size = 0
        batches[-1].append(stmt)
        size += len(stmt) + 2
    answers = await asyncio.gather(*(influx.query(influxql.statements(*b)) for b in batches))
    return [r for answer in answers for r in answer]


def _scope_part(group: list[Entity], every: bool) -> str | None:
    if every:
        return None
    stations = {ds.station for ds in group}
    pairs = sorted({(ds.station or "", ds.channel or "a") for ds in group})
    if len(pairs) == 2 * len(stations):  # both channels of each station: the station is enough
        return influxql.stations_in(sorted(s for s in stations if s))
    return influxql.series_in(pairs)


def _rows(result: dict[str, Any], index: dict[tuple[Any, Any], Entity]) -> list[Row]:
    rows = []
    for s in series(result):
        cols = s["columns"]
        tags = s.get("tags") or {}
        at_result = cols.index("result")
        positions = {name: i for i, name in enumerate(cols)}
        fixed = None
        if "station" in tags:  # GROUP BY: one series per station and channel
            fixed = index.get((tags["station"], tags.get("channel") or "a"))
            if fixed is None:
                continue
            at_station = at_channel = -1
        else:
            at_station, at_channel = cols.index("station"), cols.index("channel")
        for values in s.get("values") or []:
            ds = fixed or index.get((values[at_station], values[at_channel] or "a"))
            if ds is None or values[at_result] is None:
                continue
            t = values[0]
            rows.append(Row(t, ds.id << 32 | t, ds, values, positions))  # ids.observation_id, inlined
    return rows


async def page(influx: AsyncInflux, cat: Catalogue, datastreams: list[Entity], filt: ObsFilter,
               descending: bool, limit: int, skip: int = 0,
               cursor: tuple[int, int] | None = None) -> tuple[list[Row], bool]:
    """One page of Observations of ``datastreams`` in (time, id) order; and whether more follow."""
    groups = _by_field(datastreams, cat)
    if not groups or limit == 0:
        return [], False
    want = skip + limit + 1
    fetch = want
    while True:
        stmts, indices = [], []
        for p, (whole, all_of_it) in sorted(groups.items()):
            field_name = OBSERVED_PROPERTIES[p].field
            for group, every in _chunks(whole, all_of_it):
                parts = [_scope_part(group, every), *filt.time_parts, filt.value_condition(field_name)]
                if cursor is not None:
                    parts.append(influxql.time_compare("<=" if descending else ">=",
                                                       datetime.fromtimestamp(cursor[0], UTC)))
                stmts.append(influxql.sta_observations(field_name, parts, descending, fetch))
                indices.append({(ds.station, ds.channel): ds for ds in group})
        results = await _send(influx, stmts)
        rows: list[Row] = []
        full = False
        for result, index in zip(results, indices, strict=True):
            got = _rows(result, index)
            full = full or sum(len(s.get("values") or []) for s in series(result)) >= fetch
            rows += got
        rows.sort(key=lambda r: (r.t, r.id), reverse=descending)
        if cursor is not None:
            key = cursor
            rows = [r for r in rows if ((r.t, r.id) < key if descending else (r.t, r.id) > key)]
        if len(rows) >= want or not full or fetch >= 64 * want:
            break
        fetch *= 4  # many rows at the cursor's instant: fetch further
    rows = rows[skip:]
    return rows[:limit], len(rows) > limit


async def count(influx: AsyncInflux, cat: Catalogue, datastreams: list[Entity], filt: ObsFilter) -> int:
    groups = _by_field(datastreams, cat)
    if not groups:
        return 0
    stmts = []
    for p, (whole, all_of_it) in sorted(groups.items()):
        field_name = OBSERVED_PROPERTIES[p].field
        for group, every in _chunks(whole, all_of_it):
            stmts.append(influxql.sta_count(field_name, [_scope_part(group, every), *filt.time_parts,
                                                         filt.value_condition(field_name)]))
    results = await _send(influx, stmts)
    return sum(int(s["values"][0][1]) for r in results for s in series(r) if s.get("values"))


#: The latest Observations are looked for in this recent past first (as /v1/latest does), and
#: before it only for the Datastreams that have none in it: exact, and one pass when every
#: station reports.
LATEST_LOOKBACK_S = 7 * 86400


async def latest(influx: AsyncInflux, cat: Catalogue, datastreams: list[Entity],
                 filt: ObsFilter, now: float | None = None) -> dict[int, Row]:
    """The latest Observation of every Datastream given: one statement per property, in one
    InfluxDB request (``last()`` grouped by station and channel)."""
    since = datetime.fromtimestamp(int(time.time() if now is None else now) - LATEST_LOOKBACK_S, UTC)
    out = await _latest(influx, cat, datastreams, filt, influxql.time_compare(">=", since), True)
    missing = [ds for ds in datastreams if ds.id not in out]
    if missing:
        out |= await _latest(influx, cat, missing, filt, influxql.time_compare("<", since), False)
    return out


async def _latest(influx: AsyncInflux, cat: Catalogue, datastreams: list[Entity], filt: ObsFilter,
                  bound: str, broad: bool) -> dict[int, Row]:
    stmts, indices = [], []
    for p, (whole, all_of_it) in sorted(_by_field(datastreams, cat).items()):
        field_name = OBSERVED_PROPERTIES[p].field
        # Many series (``broad``): one pass over all of them (the rows of others are dropped
        # below) costs InfluxDB less than a WHERE naming each one.
        chunks = [(whole, True)] if broad and len(whole) > SERIES_PER_STATEMENT else _chunks(whole, all_of_it)
        for group, every in chunks:
            parts = [_scope_part(group, every), bound, *filt.time_parts, filt.value_condition(field_name)]
            stmts.append(influxql.sta_latest(field_name, parts))
            indices.append({(ds.station, ds.channel): ds for ds in group})
    if not stmts:
        return {}
    results = await _send(influx, stmts)
    out = {}
    for result, index in zip(results, indices, strict=True):
        for row in _rows(result, index):
            out[row.ds.id] = row
    return out


async def by_id(influx: AsyncInflux, cat: Catalogue, oid: int) -> Row | None:
    ds_id, t = ids.split_observation(oid)
    ds = cat.get("Datastream", ds_id)
    if ds is None:
        return None
    at = datetime.fromtimestamp(t, UTC)
    stmt = influxql.sta_observations(OBSERVED_PROPERTIES[ds.prop or 0].field, [
        influxql.series_in([(ds.station or "", ds.channel or "a")]), influxql.time_compare("=", at)],
        False, 1)
    (result,) = await influx.query(stmt)
    rows = _rows(result, {(ds.station, ds.channel): ds})
    return rows[0] if rows else None


