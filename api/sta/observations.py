"""Observations: the stored readings, read from InfluxDB page by page in time order.

A Datastream is one field (:data:`api.sta.model.OBSERVED_PROPERTIES`) of one station and
channel, so a page of Observations is one statement per property involved, sent in one
request, merged by (time, id). Paging is by key (the last (time, id) of a page, carried in
``$skiptoken``), so page 500 costs what page 1 costs. ``$filter`` is compiled: conditions on
``phenomenonTime``/``resultTime`` (as ranges: api/sta/timeset.py) and ``result`` become
InfluxQL (civicair/influxql.py builds the text), conditions on ``Datastream/…`` or
``FeatureOfInterest/…`` pick the Datastreams on the catalogue; what InfluxDB cannot answer
exactly over these (``month()``, ``or`` of separate ranges, …) is ``ObsFilter.residual``,
tested on each row by api/sta/scan.py. Anything else is 501, so a page and ``@iot.count``
are always exact.
"""

from __future__ import annotations

import asyncio
import gc
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import compress, repeat
from operator import attrgetter, itemgetter
from typing import Any, overload

import numpy as np
import orjson

from api.sta import filter as sta_filter
from api.sta import ids, timeset
from api.sta.errors import bad_request, not_implemented
from api.sta.model import OBSERVED_PROPERTIES, PM25, Catalogue, Entity
from civicair import influxql
from civicair.influx import AsyncInflux, results, series
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


_NUMBER = re.compile(r"-?\d{1,300}(\.\d{1,300})?([eE][+-]?\d{1,3})?")


def _numeric_strings(node: Any) -> Any:
    """``result gt '3'`` as ``result gt 3``: result is of type Any, and Annex A's filter tests
    (FROST too) quote its literal. Only a string that is a finite number, compared with result
    itself; any other string compared with result stays a 400 (:func:`sta_filter.check_types`)."""
    kind = node[0]
    if kind == "op" and node[1] in sta_filter.COMPARISONS:
        left, right = node[2], node[3]
        if left == ("path", ("result",)) or right == ("path", ("result",)):
            return ("op", node[1], _as_number(left), _as_number(right))
        return node
    if kind == "op" and node[1] in ("and", "or"):
        return ("op", node[1], _numeric_strings(node[2]), _numeric_strings(node[3]))
    if kind == "not":
        return ("not", _numeric_strings(node[1]))
    return node


def _as_number(node: Any) -> Any:
    if node[0] == "lit" and isinstance(node[1], str) and _NUMBER.fullmatch(node[1]):
        value = float(node[1])
        if math.isfinite(value):
            return ("lit", int(node[1]) if node[1].lstrip("-").isdigit() else value)
    return node


def compile_filter(ast: Any) -> ObsFilter:
    ast = _numeric_strings(ast)
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
    # Our nextLinks write an Observation's time (its id's low 32 bits) and id: nothing larger
    # (a time past them would overflow datetime or InfluxDB's range: a 500, not a 400).
    if not (t.isdigit() and oid.isdigit()) or len(t) > 10 or int(t) >= 2**32 or len(oid) > 19 \
            or int(oid) > ids.MAX_ID:
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


class Rows(Sequence[Row]):
    """Rows of a page as columns: times, ids, Datastreams, the JSON text of each Observation's
    own properties (:func:`render`) and InfluxDB's value columns; a :class:`Row` is made only
    when one is asked for. A page holds up to 10,000 rows: as many objects (and their lists)
    would be promoted to the old generation and make Python's collector walk the whole heap
    (the catalogue's entities) every other page."""

    __slots__ = ("_cols", "ds", "id", "t", "text", "values")

    def __init__(self, t: list[Any], id_: list[int], ds: list[Entity], text: list[bytes] | None,
                 values: dict[str, list[Any]]) -> None:
        self.t, self.id, self.ds, self.text, self.values = t, id_, ds, text, values
        self._cols: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.t)

    @overload
    def __getitem__(self, i: int) -> Row: ...

    @overload
    def __getitem__(self, i: slice) -> Rows: ...

    def __getitem__(self, i: int | slice) -> Row | Rows:
        if isinstance(i, slice):
            return Rows(self.t[i], self.id[i], self.ds[i], None if self.text is None else self.text[i],
                        {name: column[i] for name, column in self.values.items()})
        if self._cols is None:
            self._cols = {name: k for k, name in enumerate(self.values)}
        raw = [column[i] for column in self.values.values()]
        return Row(self.t[i], self.id[i], self.ds[i], raw, self._cols)

    def take(self, order: list[int]) -> Rows:
        """The rows in ``order`` (positions)."""
        pick = itemgetter(*order) if len(order) > 1 else lambda column: tuple(column[i] for i in order)
        return Rows(list(pick(self.t)), list(pick(self.id)), list(pick(self.ds)),
                    None if self.text is None else list(pick(self.text)),
                    {name: list(pick(column)) for name, column in self.values.items()})

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        names = list(dict.fromkeys(name for part in parts for name in part.values))
        return Rows([t for part in parts for t in part.t], [i for part in parts for i in part.id],
                    [d for part in parts for d in part.ds],
                    None if any(part.text is None for part in parts)
                    else [x for part in parts for x in part.text],  # type: ignore[union-attr]
                    {name: [v for part in parts for v in part.values.get(name) or [None] * len(part)]
                     for name in names})


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


def fragments(prefix: str, rows: Sequence[Row]) -> list[orjson.Fragment]:
    """Each row as the JSON text of a whole Observation (see api/sta/engine.py): its own
    properties (:func:`render`, done as the rows arrived if :func:`page` fetched them) between its
    id and links. The text is exactly what orjson makes of :func:`_whole` (tests/api/sta/test_query.py)."""
    if not rows:
        return []
    if isinstance(rows, Rows) and rows.text is not None:
        oids, texts = rows.id, rows.text
    else:
        listed = list(rows)
        column = _columns(listed)
        rendered = render(list(map(_TIME, listed)), column, list(map(_PROP, listed)))
        if rendered is None:  # not from an ``epoch=s`` query: the general path
            return [orjson.Fragment(orjson.dumps(_whole(prefix, row))) for row in listed]
        oids, texts = list(map(_ID, listed)), rendered
    link = orjson.dumps(prefix)[1:-1]  # as it reads inside a JSON string
    oid = _numbers(oids)
    return list(map(orjson.Fragment, map(b"".join, zip(
        repeat(b'{"@iot.id":'), oid, repeat(b',"@iot.selfLink":"' + link), oid, repeat(b')"'), texts,
        repeat(b',"Datastream@iot.navigationLink":"' + link), oid,
        repeat(b')/Datastream","FeatureOfInterest@iot.navigationLink":"' + link), oid,
        repeat(b')/FeatureOfInterest"}')))))


def render(times: list[Any], column: Callable[[str], list[Any]],
           props: list[int | None]) -> list[bytes] | None:
    """Each row's own properties as JSON text, ``,"phenomenonTime":…,"parameters":{…}``, exactly
    as orjson writes them; None if a time is not whole seconds of years 1000-9999.

    Column by column, as a page holds up to 10,000 rows and per-row Python was most of its cost:
    numbers are orjson's own (one ``dumps`` of a column, split at the commas), times are written
    digit by digit with numpy, the short lists (quality flag names, correction method) rendered
    once per distinct value, and each row's pieces joined by one ``b"".join`` (mapped, in C)."""
    if not times:
        return []
    t = _int_array(times)
    window = column("window")
    w = _int_array(window)
    if w is None:
        w = _int_array([x if type(x) is int else 0 for x in window])
    if t is None or w is None:
        return None
    w = np.maximum(w, 0)
    if not (_FIRST_T <= int(t.min()) - int(w.max()) and int(t.max()) <= _LAST_T):
        return None
    end, start = np.split(_iso_digits(np.concatenate([t, t - w])), 2)
    phenomenon = np.concatenate([start, np.full((len(t), 1), ord("/"), np.uint8), end], axis=1)
    phenomenon[w == 0] = np.pad(end[w == 0], ((0, 0), (0, 21)))  # no window: the instant alone
    qc = column("qc")
    quality = _rendered(qc, lambda q: orjson.dumps(quality_names(q)) if q else b"[]")
    correction = _rendered(column("pm25_method"), lambda m: b',"correction":' + orjson.dumps(m))
    if set(props) != {PM25}:
        correction = [c if p == PM25 else b"" for c, p in zip(correction, props, strict=True)]
    return list(map(b"".join, zip(
        repeat(b',"phenomenonTime":"'), phenomenon.view("S41").ravel().tolist(),
        repeat(b'","resultTime":"'), end.view("S20").ravel().tolist(),
        repeat(b'","result":'), _numbers(column("result")), repeat(b',"resultQuality":'), quality,
        repeat(b',"validTime":null,"parameters":{"frames":'), _numbers(column("n")),
        repeat(b',"window_s":'), _numbers(window), repeat(b',"qc":'), _numbers(qc), correction,
        repeat(b"}"))))


_TIME, _ID, _PROP, _RAW = attrgetter("t"), attrgetter("id"), attrgetter("ds.prop"), attrgetter("raw")
#: Times :func:`_iso_digits` writes (years 1000 to 9999), in s since the epoch.
_FIRST_T, _LAST_T = -30610224000, 253402300799


def _int_array(values: list[Any]) -> np.ndarray | None:
    """``values`` as int64, or None unless every one is an int (not a bool) that fits."""
    if set(map(type, values)) != {int}:
        return None
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        return None


def _iso_digits(t: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SSZ`` of each time [s since the epoch], as an (n, 20) array of ASCII
    codes. The civil date of a day number is Howard Hinnant's ``civil_from_days``
    (https://howardhinnant.github.io/date_algorithms.html), vectorised."""
    days, sec = np.divmod(t, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    out = np.empty((len(t), 20), np.uint8)
    for at, value, width in ((0, year, 4), (5, month, 2), (8, day, 2), (11, sec // 3600, 2),
                             (14, sec // 60 % 60, 2), (17, sec % 60, 2)):
        for k in range(width):
            out[:, at + width - 1 - k] = value // 10**k % 10 + ord("0")
    for at, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "Z")):
        out[:, at] = ord(char)
    return out


def _columns(rows: list[Row]) -> Callable[[str], list[Any]]:
    """``column(name)``: that value of every row (None where a row has no such column)."""
    first = rows[0].cols
    if all(row.cols is first for row in rows):
        raws = list(map(_RAW, rows))

        def column(name: str) -> list[Any]:  # (not zip(*raws): an iterator per row)
            return list(map(itemgetter(first[name]), raws)) if name in first else [None] * len(rows)
    else:
        def column(name: str) -> list[Any]:
            return [row.raw[row.cols[name]] if name in row.cols else None for row in rows]
    return column


def _rendered(values: list[Any], render: Any) -> list[bytes]:
    """``render`` of each value, called once per distinct one (when they are all of one type,
    or None: 1 and True, 1 and 1.0 would share a key)."""
    if len(set(map(type, values)) - {type(None)}) > 1:
        return [render(v) for v in values]
    texts = {v: render(v) for v in set(values)}
    return list(map(texts.__getitem__, values))


def _numbers(values: list[Any]) -> list[bytes]:
    """Each value as orjson writes it (ints as Python does): numbers, null, true/false."""
    if not set(map(type, values)) - {int, float, type(None), bool}:
        try:
            return orjson.dumps(values)[1:-1].split(b",")
        except orjson.JSONEncodeError:  # an int beyond 64 bits
            pass
    return [str(x).encode() if type(x) is int else orjson.dumps(x) for x in values]


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
    answers = await asyncio.gather(*(influx.query(influxql.statements(*b)) for _, b in _batches(stmts)))
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
               cursor: tuple[int, int] | None = None) -> tuple[Rows, bool]:
    """One page of Observations of ``datastreams`` in (time, id) order; and whether more follow.

    Each statement asks for ``skip + limit + 1`` rows (and, after a cursor, one more per series,
    for the rows at the cursor's instant that went on the page before), as InfluxDB streams them:
    every chunk is turned into columns and rendered (:func:`render`) while InfluxDB writes the next."""
    groups = _by_field(datastreams, cat)
    if not groups or limit == 0:
        return Rows([], [], [], [], {}), False
    want = skip + limit + 1
    scale = 1
    while True:
        stmts, indices, fetches = [], [], []
        for p, (whole, all_of_it) in sorted(groups.items()):
            field_name = OBSERVED_PROPERTIES[p].field
            for group, every in _chunks(whole, all_of_it):
                parts = [_scope_part(group, every), *filt.time_parts, filt.value_condition(field_name)]
                fetch = want * scale
                if cursor is not None:
                    parts.append(influxql.time_compare("<=" if descending else ">=",
                                                       datetime.fromtimestamp(cursor[0], UTC)))
                    fetch += min(len(group), CURSOR_SERIES)
                one = not every and len(group) == 1  # (its tags once, not on every row)
                stmts.append(influxql.sta_observations(field_name, parts, descending, fetch, one_series=one))
                indices.append({(ds.station, ds.channel): ds for ds in group})
                fetches.append(fetch)
        got, sent = await _fetch(influx, stmts, indices)
        blocks = [block for part in got for block in part]
        rows = blocks[0] if len(blocks) == 1 else Rows.concat(blocks)
        full = any(n >= fetch for n, fetch in zip(sent, fetches, strict=True))
        if len(stmts) > 1 or len(indices[0]) > 1:  # one series comes in (time, id) order already
            order = np.lexsort((np.array(rows.id, dtype=np.int64), np.array(rows.t, dtype=np.int64)))
            rows = rows.take((order[::-1] if descending else order).tolist())
        if cursor is not None:  # the rows up to the cursor (at its instant) were on the page before
            seen = 0
            while seen < len(rows) and ((rows.t[seen], rows.id[seen]) >= cursor if descending
                                        else (rows.t[seen], rows.id[seen]) <= cursor):
                seen += 1
            rows = rows[seen:]
        if len(rows) >= want or not full or scale >= 64:
            break
        scale *= 4  # more rows at the cursor's instant than asked for: fetch further
    rows = rows[skip:]
    return rows[:limit], len(rows) > limit


#: Rows per chunk of a streamed page (each is parsed and rendered while InfluxDB writes the next).
CHUNK_ROWS = 1000
#: After a cursor, a statement over up to this many series asks for one more row per series.
CURSOR_SERIES = 16


def _batches(stmts: list[str]) -> list[tuple[int, list[str]]]:
    """``stmts`` in as few requests as keep each one short: (index of the first, statements)."""
    batches: list[tuple[int, list[str]]] = [(0, [])]
    size = 0
    for i, stmt in enumerate(stmts):
        if batches[-1][1] and size + len(stmt) > MAX_REQUEST_CHARS:
            batches.append((i, []))
            size = 0
        batches[-1][1].append(stmt)
        size += len(stmt) + 2
    return batches


async def _fetch(influx: AsyncInflux, stmts: list[str],
                 indices: list[dict[tuple[Any, Any], Entity]]) -> tuple[list[list[Rows]], list[int]]:
    """The rows of each statement, rendered, and how many rows InfluxDB sent for each."""
    rows: list[list[Rows]] = [[] for _ in stmts]
    sent = [0] * len(stmts)

    async def one(first: int, batch: list[str]) -> None:
        stream = influx.query_chunks(influxql.statements(*batch), chunk_size=CHUNK_ROWS)
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                with _no_collection():
                    _take(chunk, first, indices, rows, sent)

    await asyncio.gather(*(one(first, batch) for first, batch in _batches(stmts)))
    return rows, sent


def _take(chunk: bytes, first: int, indices: list[dict[tuple[Any, Any], Entity]],
          rows: list[list[Rows]], sent: list[int]) -> None:
    """One chunk's rows, as columns, to the rows of its statements (``first`` is the index of
    the request's first statement)."""
    for result in results(chunk):
        k = first + int(result.get("statement_id", 0))
        for s in series(result):
            sent[k] += len(s.get("values") or [])
            block = _block(s, indices[k])
            if block is not None:
                rows[k].append(block)


@contextmanager
def _no_collection() -> Iterator[None]:
    """No garbage collection while a chunk is turned into columns (no ``await`` inside, so no
    other request runs meanwhile). Parsing a chunk makes a list per row, all freed when the chunk
    is done; a collection in between would promote them, and enough promoted objects start a
    collection of the old generation: a walk of the whole heap (the catalogue's entities) that
    took some 80 ms, every other 10,000-row page. Counts and thresholds are left as they are."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: Columns of :func:`civicair.influxql.sta_observations` that are not an Observation's values.
_NOT_VALUES = frozenset({"time", "station", "channel"})


def _block(s: dict[str, Any], index: dict[tuple[Any, Any], Entity]) -> Rows | None:
    """One series (or chunk of it) of :func:`civicair.influxql.sta_observations` as columns,
    rendered; the rows of series not in ``index`` (and without a result) left out."""
    values = s.get("values") or []
    if not values:
        return None
    cols = s["columns"]
    tags = s.get("tags") or {}
    if "station" in tags:  # GROUP BY: one series per station and channel
        one = index.get((tags["station"], tags.get("channel") or "a"))
        if one is None:
            return None
        ds: list[Any] = [one] * len(values)
        missing = False
    else:
        keys = list(zip(map(itemgetter(cols.index("station")), values),
                        map(itemgetter(cols.index("channel")), values), strict=True))
        of = {key: index.get((key[0], key[1] or "a")) for key in set(keys)}
        ds = list(map(of.__getitem__, keys))
        missing = any(d is None for d in of.values())
    at_result = cols.index("result")
    if missing or None in map(itemgetter(at_result), values):  # (``in`` tests identity first, in C)
        keep = [d is not None and v[at_result] is not None for d, v in zip(ds, values, strict=True)]
        values, ds = list(compress(values, keep)), list(compress(ds, keep))
        if not values:
            return None
    columns = {name: list(map(itemgetter(i), values))
               for i, name in enumerate(cols) if name not in _NOT_VALUES}
    t = list(map(itemgetter(0), values))
    props = list(map(attrgetter("prop"), ds))
    oid = list(map(ids.observation_id, map(_ID, ds), t))
    return Rows(t, oid, ds, render(t, lambda name: columns.get(name) or [None] * len(t), props), columns)


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


async def one_series(influx: AsyncInflux, cat: Catalogue, ds: Entity, filt: ObsFilter, descending: bool,
                     fetch: int, cursor: tuple[int, int] | None = None) -> AsyncIterator[Rows]:
    """The Observations of one Datastream in (time, id) order, ``fetch`` at most, rendered, a block
    at a time as InfluxDB streams them: :func:`page`'s statement for one series, whose rows come
    in page order (one per instant), so the caller can trim the cursor's row, ``$skip`` and
    ``$top`` as they pass and send each block on (api/sta/engine.py streams a page's body so)."""
    ((group, every),) = _by_field([ds], cat).values()
    field_name = OBSERVED_PROPERTIES[ds.prop or 0].field
    parts = [_scope_part(group, every), *filt.time_parts, filt.value_condition(field_name)]
    if cursor is not None:
        at = datetime.fromtimestamp(cursor[0], UTC)
        parts.append(influxql.time_compare("<=" if descending else ">=", at))
    stmt = influxql.sta_observations(field_name, parts, descending, fetch, one_series=not every)
    index = [{(ds.station, ds.channel): ds}]
    async with aclosing(influx.query_chunks(influxql.statements(stmt), chunk_size=CHUNK_ROWS)) as chunks:
        async for chunk in chunks:
            got: list[list[Rows]] = [[]]
            with _no_collection():
                _take(chunk, 0, index, got, [0])
            for block in got[0]:
                yield block
