"""Resolving a SensorThings request: a path and query options in, a JSON document out.

Catalogue entities (everything but Observations) are navigated, filtered, sorted, paged and
expanded in memory; Observations go to :mod:`api.sta.observations`. Serialisation adds
``@iot.id``, an absolute ``@iot.selfLink`` and the ``…@iot.navigationLink`` of every
navigation property.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from api.settings import ApiSettings
from api.sta import filter as sta_filter
from api.sta import ids, observations, options, scan
from api.sta.errors import bad_request, not_found, not_implemented
from api.sta.model import NAVIGATION, PROPERTIES, SETS, TYPE_SET, Catalogue, Entity, sensor_id
from api.sta.observations import ObsFilter, Row
from api.sta.paths import Segment, parse_path
from civicair.influx import AsyncInflux

CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
]
TIME_ORDER = {("phenomenonTime",), ("resultTime",)}
MAX_RENDERED = 100_000


@dataclass(slots=True)
class ObsSource:
    """The Observations of some Datastreams (not fetched until paged)."""

    datastreams: list[Entity]


@dataclass(slots=True)
class Context:
    root: str  # absolute URL of the service root, no trailing slash
    cat: Catalogue
    influx: AsyncInflux
    settings: ApiSettings
    path: str = ""
    filters: dict[int, ObsFilter] = field(default_factory=dict)
    sorting: scan.Budget = field(default_factory=scan.Budget)  # rows read for sorted orders


def service_root(root: str, settings: ApiSettings) -> dict[str, Any]:
    return {
        "value": [{"name": name, "url": f"{root}/{name}"} for name in SETS],
        "serverSettings": {"conformance": CONFORMANCE},
        "licence": {"name": settings.licence, "url": settings.licence_url},
        "attribution": settings.attribution,
    }


# -- navigation ------------------------------------------------------------------------------

def self_link(ctx: Context, type_: str, id_: int) -> str:
    return f"{ctx.root}/{TYPE_SET[type_]}({id_})"


def navigate(cat: Catalogue, item: Entity | Row, name: str) -> Entity | list[Entity] | ObsSource | None:
    if isinstance(item, Row):
        if name == "Datastream":
            return item.ds
        return cat.get("FeatureOfInterest", cat.things[item.ds.station or ""].id)
    t, station = item.type, item.station or ""
    thing = cat.things.get(station)
    if t == "Thing":
        if name == "Locations":
            return cat.of_station(station, "Location")[-1:]  # ids grow with k: the current one
        if name == "HistoricalLocations":
            return list(cat.of_station(station, "HistoricalLocation"))
        return list(cat.datastreams_of(station))
    if t == "Location":
        if name == "Things":
            return [thing] if thing else []
        return [e for e in [cat.get("HistoricalLocation", item.id)] if e]
    if t == "HistoricalLocation":
        if name == "Thing":
            return thing
        return [e for e in [cat.get("Location", item.id)] if e]
    if t == "Datastream":
        if name == "Thing":
            return thing
        if name == "Sensor":
            return cat.get("Sensor", sensor_id(item.model or "unknown"))
        if name == "ObservedProperty":
            return cat.get("ObservedProperty", (item.prop or 0) + 1)
        return ObsSource([item])
    if t == "Sensor":
        return [d for d in cat.all("Datastream") if d.model == item.model]
    if t == "ObservedProperty":
        return [d for d in cat.all("Datastream") if d.prop == item.prop]
    if t == "FeatureOfInterest":
        return ObsSource(list(cat.datastreams_of(station)))
    if t == "Observation":  # a stand-in for Observations of one Datastream (filter scope)
        ds = cat.get("Datastream", ids.datastream_id(thing.id if thing else 0, item.channel or "a",
                                                     item.prop or 0))
        if name == "Datastream":
            return ds
        return cat.get("FeatureOfInterest", thing.id) if thing else None
    return None


def type_of(item: Entity | Row) -> str:
    return "Observation" if isinstance(item, Row) else item.type


def resolver(cat: Catalogue, item: Entity | Row):
    def resolve(path: tuple[str, ...]) -> Any:
        return _resolve(cat, item, path)
    return resolve


def _resolve(cat: Catalogue, item: Any, path: tuple[str, ...]) -> Any:
    if not path:
        return None
    if isinstance(item, sta_filter.Multi):
        return sta_filter.Multi(v for x in item for v in _flat(_resolve(cat, x, path)))
    t = type_of(item)
    head, rest = path[0], path[1:]
    if head in ("id", "@iot.id") and not rest:
        return item.id
    if head in PROPERTIES[t]:
        value = observations.to_json(item)[head] if isinstance(item, Row) else item.props.get(head)
        for key in rest:
            value = value.get(key) if isinstance(value, dict) else None
        return value
    if head in NAVIGATION[t]:
        target = navigate(cat, item, head)
        if isinstance(target, ObsSource):
            raise not_implemented("conditions through Observations (filter the Observations instead)")
        if target is None:
            return None
        if isinstance(target, list):
            return sta_filter.Multi(v for x in target for v in _flat(_resolve(cat, x, rest)))
        return _resolve(cat, target, rest)
    raise bad_request(f"{t} has no property {head!r}" if len(head) < 40 else f"{t} has no such property")


def _flat(value: Any) -> list[Any]:
    return list(value) if isinstance(value, sta_filter.Multi) else [value]


# -- serialisation ---------------------------------------------------------------------------

def _check_select(type_: str, select: list[str] | None) -> None:
    for name in select or []:
        if name not in ("id", "@iot.id", "@iot.selfLink") and name not in PROPERTIES[type_] \
                and name not in NAVIGATION[type_]:
            raise bad_request(f"$select: {type_} has no property {name!r}" if len(name) < 40
                              else f"$select: {type_} has no such property")


def serialise_observations(ctx: Context, rows: Sequence[Row]) -> list[Any]:
    """:func:`serialise` of whole Observations, as pre-rendered JSON (``orjson.Fragment``):
    a page holds up to 10,000 and this is most of the API's own cost on it. The text is
    exactly what orjson makes of :func:`serialise` (tests/api/sta/test_query.py checks)."""
    return observations.fragments(f"{ctx.root}/Observations(", rows)


def serialise(ctx: Context, item: Entity | Row, select: list[str] | None) -> dict[str, Any]:
    if select is None and isinstance(item, Entity):
        # Catalogue entities do not change until the catalogue is reloaded: render each once.
        key = (ctx.root, item.type, item.id)
        cached = ctx.cat.rendered.get(key)
        if cached is None:
            cached = _serialise(ctx, item, None)
            if len(ctx.cat.rendered) < MAX_RENDERED:  # many Host names must not grow it without end
                ctx.cat.rendered[key] = cached
        return dict(cached)  # a copy: $expand adds to it
    return _serialise(ctx, item, select)


def _serialise(ctx: Context, item: Entity | Row, select: list[str] | None) -> dict[str, Any]:
    t = type_of(item)
    link = self_link(ctx, t, item.id)
    body = observations.to_json(item) if isinstance(item, Row) else item.props
    out: dict[str, Any] = {}
    if select is None or "id" in select or "@iot.id" in select:
        out["@iot.id"] = item.id
    if select is None or "@iot.selfLink" in select:
        out["@iot.selfLink"] = link
    for name in PROPERTIES[t]:
        if select is None or name in select:
            out[name] = body.get(name)
    for name in NAVIGATION[t]:
        if select is None or name in select:
            out[f"{name}@iot.navigationLink"] = f"{link}/{name}"
    return out


def _query_string(raw: dict[str, str], **changes: str | None) -> str:
    merged = {**raw, **changes}
    return "&".join(f"{k}={quote(v, safe='$(),;/:@')}" for k, v in merged.items() if v is not None)


# -- collections -----------------------------------------------------------------------------

def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, datetime):
        return (4, value.timestamp())
    return (5, json.dumps(value, sort_keys=True, default=str))


def _predicate(ctx: Context, type_: str, node: Any) -> Callable[[Entity], bool]:
    """``node`` as a function of an entity: the common shapes (a property compared with a
    literal, and/or of those) directly, the rest through :func:`api.sta.filter.evaluate`."""
    kind = node[0]
    if kind == "op" and node[1] in ("and", "or"):
        left, right = _predicate(ctx, type_, node[2]), _predicate(ctx, type_, node[3])
        if node[1] == "and":
            return lambda e: left(e) and right(e)
        return lambda e: left(e) or right(e)
    if kind == "op" and node[1] in sta_filter.COMPARISONS and node[2][0] == "path" and node[3][0] == "lit" \
            and len(node[2][1]) == 1 and node[2][1][0] in PROPERTIES[type_]:
        op, name, value = node[1], node[2][1][0], node[3][1]
        compare = sta_filter.compare
        return lambda e: compare(op, e.props.get(name), value)
    return lambda e: sta_filter.truthy(sta_filter.evaluate(node, resolver(ctx.cat, e)))


def _apply_in_memory(ctx: Context, items: list[Entity],
                     opts: options.Options) -> tuple[list[Entity], int, bool]:
    """(page, total after $filter, more pages follow)."""
    if opts.skiptoken is not None:
        raise bad_request("$skiptoken applies to Observations only")
    if opts.filter is not None and items:
        keep = _predicate(ctx, items[0].type, opts.filter)
        items = [e for e in items if keep(e)]
    items = sorted(items, key=lambda e: e.id)
    for node, direction in reversed(opts.orderby):
        items.sort(key=lambda e: _sort_key(sta_filter.evaluate(node, resolver(ctx.cat, e))),
                   reverse=direction == "desc")
    total = len(items)
    page = items[opts.skip:opts.skip + opts.limit]
    return page, total, 0 < opts.limit and opts.skip + opts.limit < total  # $top=0: no endless nextLinks


async def collection(ctx: Context, type_: str, source: list[Entity] | ObsSource, opts: options.Options,
                     base: str) -> dict[str, Any]:
    """A collection document: ``@iot.count`` (asked for), ``value``, ``@iot.nextLink`` (partial)."""
    _check_select(type_, opts.select)
    out: dict[str, Any] = {}
    if isinstance(source, ObsSource):
        rows, total, more, token = await _observations(ctx, source, opts)
        page: Sequence[Any] = rows
        next_q = None if not more else _query_string(opts.raw, **{"$skip": None, "$skiptoken": token}) \
            if token is not None else _query_string(opts.raw, **{"$skip": str(opts.skip + opts.limit)})
    else:
        page, total, more = _apply_in_memory(ctx, source, opts)
        next_q = _query_string(opts.raw, **{"$skip": str(opts.skip + opts.limit)}) if more else None
    if opts.count:
        out["@iot.count"] = total
    if type_ == "Observation" and opts.select is None and not opts.expand:
        out["value"] = serialise_observations(ctx, page)
    else:
        out["value"] = [serialise(ctx, e, opts.select) for e in page]
    await expand(ctx, type_, page, out["value"], opts.expand)
    if next_q is not None:
        out["@iot.nextLink"] = f"{base}?{next_q}"
    return out


def time_ordered(opts: options.Options) -> bool:
    """Whether the order is InfluxDB's: by time (then id), one direction; the others are sorted
    here (:func:`_sorted_observations`)."""
    if not opts.orderby:
        return True
    (node, direction), *rest = opts.orderby
    if node[0] != "path" or node[1] not in TIME_ORDER:
        return False
    return all(extra[0] == "path" and extra[1] in (("id",), ("@iot.id",), *TIME_ORDER) and d == direction
               for extra, d in rest)


def obs_order(opts: options.Options) -> bool:
    """True for descending, for an order :func:`time_ordered` accepts (else 501)."""
    if not time_ordered(opts):
        raise not_implemented("Observations are ordered by phenomenonTime or resultTime (then id) here")
    return bool(opts.orderby) and opts.orderby[0][1] == "desc"


def obs_filter(ctx: Context, source: ObsSource, opts: options.Options) -> tuple[list[Entity], ObsFilter]:
    filt = observations.compile_filter(opts.filter) if opts.filter is not None else ObsFilter()
    datastreams = source.datastreams
    for pred in filt.scope:
        datastreams = [ds for ds in datastreams if sta_filter.truthy(sta_filter.evaluate(
            pred, resolver(ctx.cat, Entity("Observation", 0, {}, ds.station, ds.channel, ds.prop))))]
    return datastreams, filt


async def _observations(ctx: Context, source: ObsSource,
                        opts: options.Options) -> tuple[Sequence[Row], int | None, bool, str | None]:
    """(page, count if asked, more follow, the $skiptoken they follow from: None for $skip)."""
    if not time_ordered(opts):
        return await _sorted_observations(ctx, source, opts)
    descending = obs_order(opts)
    datastreams, filt = obs_filter(ctx, source, opts)
    cursor = observations.parse_skiptoken(opts.skiptoken)
    _check_skip(opts, cursor)
    by_row = _row_resolver(ctx)
    rows, more, last = await scan.filtered_page(ctx.influx, ctx.cat, datastreams, filt, descending,
                                                opts.limit, 0 if cursor else opts.skip, cursor, by_row)
    total = await scan.filtered_count(ctx.influx, ctx.cat, datastreams, filt, by_row) if opts.count else None
    token = f"{last[0]}.{last[1]}" if more and last else None
    return rows, total, more and token is not None, token


async def _sorted_observations(ctx: Context, source: ObsSource,
                               opts: options.Options) -> tuple[Sequence[Row], int | None, bool, None]:
    """Observations in an order InfluxDB cannot give (``$orderby=result``, ``phenomenonTime,result``):
    every one the filter keeps is read (:func:`scan.every_row`, bounded), sorted here by each key
    (ties by id, as on the catalogue) and paged by ``$skip``."""
    if opts.skiptoken is not None:
        raise bad_request("$skiptoken must be copied from an @iot.nextLink")
    for node, _ in opts.orderby:  # before any row is read (and with none to read)
        _check_paths("Observation", node)
    datastreams, filt = obs_filter(ctx, source, opts)
    by_row = _row_resolver(ctx)
    if opts.limit == 0:  # no rows to sort: a count at most
        total = None
        if opts.count:
            total = await scan.filtered_count(ctx.influx, ctx.cat, datastreams, filt, by_row)
        return observations.Rows([], [], [], [], {}), total, False, None
    rows = await scan.every_row(ctx.influx, ctx.cat, datastreams, filt, by_row, ctx.sorting)
    order = sorted(range(len(rows)), key=rows.id.__getitem__)
    for node, direction in reversed(opts.orderby):
        if node == ("path", ("result",)):
            keys = [_sort_key(v) for v in rows.values.get("result") or [None] * len(rows)]
        else:
            keys = [_sort_key(v) for v in scan.values(node, rows, by_row)]
        order.sort(key=keys.__getitem__, reverse=direction == "desc")
    total = len(order)
    page = rows.take(order[opts.skip:opts.skip + opts.limit])
    return page, total if opts.count else None, 0 < opts.limit and opts.skip + opts.limit < total, None


def _check_paths(type_: str, node: Any) -> None:
    """Every path in ``node`` names a property (or id) of ``type_`` or goes there through its
    navigation properties: else 400 (the message names none of the client's text)."""
    kind = node[0]
    if kind == "path":
        t = type_
        for name in node[1]:
            if name in ("id", "@iot.id") or name in PROPERTIES[t]:
                return
            if name not in NAVIGATION[t]:
                raise bad_request(f"$orderby: {t} has no such property")
            t = NAVIGATION[t][name][0]
    elif kind == "op":
        _check_paths(type_, node[2])
        _check_paths(type_, node[3])
    elif kind == "call":
        for arg in node[2]:
            _check_paths(type_, arg)
    elif kind in ("not", "neg"):
        _check_paths(type_, node[1])


def _check_skip(opts: options.Options, cursor: tuple[int, int] | None) -> None:
    if cursor is None and opts.skip > options.MAX_SKIP:
        raise not_implemented(f"$skip over {options.MAX_SKIP} Observations (InfluxDB would read them all); "
                              "follow the nextLinks, which page by time, or filter on phenomenonTime")


def _row_resolver(ctx: Context) -> scan.Resolver:
    return lambda row: resolver(ctx.cat, row)


# -- a streamed page -------------------------------------------------------------------------

#: A streamed Observations page sends its first bytes once it has this many; a page that ends
#: before (most: ``$top`` defaults to 100) goes in one piece, with its ETag. 256 KiB is also where
#: api/middleware.py's gzip turns fast, as it decides on the first part of a body.
STREAM_MIN_BYTES = 256 * 1024
_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS  # api/envelope.py's JSONResponse


@dataclass(slots=True)
class Streamed:
    """A collection document as bytes: ``first``, then ``rest`` as it is made (None: ``first``
    is the whole document)."""

    first: bytes
    rest: AsyncIterator[bytes] | None


async def stream_observations(ctx: Context, source: ObsSource, opts: options.Options,
                              base: str) -> Streamed | None:
    """:func:`collection` of Observations, its body sent as InfluxDB streams the rows: ``{"@iot.count":…,``
    (counted first), ``"value":[``, each block of rows rendered as it arrives, ``]``, the
    ``@iot.nextLink`` (known at the end) and ``}``: the very bytes orjson makes of
    :func:`collection`'s document (tests/api/sta/test_stream.py). For the Observations of one
    Datastream without ``$expand``, with a ``$filter`` InfluxDB answers alone; None for the rest
    (buffered, as before).

    Everything that can fail with a 4xx or a 5xx (options, the count, InfluxDB's answer to the
    statement) fails before ``first`` is returned. A failure later (InfluxDB gone mid-answer)
    raises out of ``rest``: the body is cut short, never closed by ``]}`` (docs/sensorthings.md)."""
    if opts.expand or opts.limit == 0:
        return None
    _check_select("Observation", opts.select)
    if not time_ordered(opts):
        return None
    descending = obs_order(opts)
    datastreams, filt = obs_filter(ctx, source, opts)
    if len(datastreams) != 1 or filt.residual is not None:  # (a row-by-row filter: api/sta/scan.py)
        return None
    cursor = observations.parse_skiptoken(opts.skiptoken)
    _check_skip(opts, cursor)
    skip = 0 if cursor else opts.skip
    head = b"{"
    if opts.count:
        total = await scan.filtered_count(ctx.influx, ctx.cat, datastreams, filt, _row_resolver(ctx))
        head += b'"@iot.count":' + orjson.dumps(total) + b","
    blocks = observations.one_series(ctx.influx, ctx.cat, datastreams[0], filt, descending,
                                     skip + opts.limit + 1 + (cursor is not None), cursor)
    parts = _page_parts(ctx, _read_ahead(blocks), opts, base, head + b'"value":[', cursor, skip, descending)
    first, done = await anext(parts)
    if done:
        return Streamed(first, None)
    return Streamed(first, _bytes_of(parts))


async def _bytes_of(parts: AsyncIterator[tuple[bytes, bool]]) -> AsyncIterator[bytes]:
    async with aclosing(parts):  # type: ignore[type-var]
        async for text, _ in parts:
            yield text


_END = object()
#: Pumps still finishing InfluxDB's answer after their reader left (asyncio keeps weak references only).
_PUMPS: set[asyncio.Task[None]] = set()


async def _read_ahead(blocks: AsyncIterator[observations.Rows]) -> AsyncIterator[observations.Rows]:
    """``blocks`` read (and rendered) as fast as InfluxDB sends them, whatever the client's pace: a
    slow reader of a streamed page must not hold a query slot and InfluxDB's answer open longer
    than the buffered page did. What the client has not taken yet waits here: at most the page,
    as the buffered path holds it. An error is handed on in order.

    A reader that leaves (a client gone, a page full) stops the pump at its next block, which
    then closes InfluxDB's stream as a generator is closed; it is never cancelled mid-read: that
    left httpx's connection taken from its pool (tests/api/sta/test_stream.py)."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    gone = False

    async def pump() -> None:
        try:
            async with aclosing(blocks):  # type: ignore[type-var]
                async for block in blocks:
                    if gone:
                        break
                    queue.put_nowait(block)
        except Exception as exc:  # (raised to the reader, in order)
            queue.put_nowait(exc)
        else:
            queue.put_nowait(_END)

    task = asyncio.create_task(pump())
    _PUMPS.add(task)
    task.add_done_callback(_PUMPS.discard)
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        gone = True


async def _page_parts(ctx: Context, blocks: AsyncIterator[observations.Rows], opts: options.Options,
                      base: str, head: bytes, cursor: tuple[int, int] | None, skip: int,
                      descending: bool) -> AsyncIterator[tuple[bytes, bool]]:
    """The page's text in parts of :data:`STREAM_MIN_BYTES` or more, each with whether it is the last;
    the rows trimmed as :func:`api.sta.observations.page` trims them (the cursor's, ``$skip``,
    ``$top``), one more row telling that more follow."""
    held, size, comma = [head], len(head), b""
    left, more, last = opts.limit, False, None
    async with aclosing(blocks):  # type: ignore[type-var]
        async for block in blocks:
            if cursor is not None:  # the row at the cursor was on the page before
                seen = 0
                while seen < len(block) and ((block.t[seen], block.id[seen]) >= cursor if descending
                                             else (block.t[seen], block.id[seen]) <= cursor):
                    seen += 1
                block = block[seen:]
                if block:
                    cursor = None
            if skip and block:
                dropped = min(skip, len(block))
                block, skip = block[dropped:], skip - dropped
            if len(block) > left:
                more, block = True, block[:left]
            if block:
                if opts.select is None:
                    text = orjson.dumps(serialise_observations(ctx, block))
                else:
                    text = orjson.dumps([serialise(ctx, row, opts.select) for row in block], option=_JSON)
                held.append(comma + text[1:-1])
                size += len(held[-1])
                comma, left, last = b",", left - len(block), block
            if more:
                break
            if size >= STREAM_MIN_BYTES:
                yield b"".join(held), False
                held, size = [], 0
    held.append(b"]")
    if more and last is not None:
        token = f"{last.t[-1]}.{last.id[-1]}"
        next_q = _query_string(opts.raw, **{"$skip": None, "$skiptoken": token})
        held.append(b',"@iot.nextLink":' + orjson.dumps(f"{base}?{next_q}"))
    held.append(b"}")
    yield b"".join(held), True


# -- $expand ---------------------------------------------------------------------------------

def _is_latest(opts: options.Options) -> bool:
    return (opts.top == 1 and opts.skip == 0 and not opts.count and bool(opts.orderby)
            and time_ordered(opts) and obs_order(opts) and opts.skiptoken is None
            and (opts.filter is None or observations.compile_filter(opts.filter).residual is None))


async def expand(ctx: Context, type_: str, items: Sequence[Any], bodies: list[dict[str, Any]],
                 items_expand: list[options.Expand]) -> None:
    for exp in items_expand:
        name = exp.path[0]
        if name not in NAVIGATION[type_]:
            raise bad_request(f"$expand: {type_} has no navigation property {name!r}" if len(name) < 40
                              else f"$expand: {type_} has no such navigation property")
        target_type, is_set = NAVIGATION[type_][name]
        opts = exp.options
        _check_select(target_type, opts.select)
        targets = [navigate(ctx.cat, item, name) for item in items]
        if target_type == "Observation" and is_set:
            await _expand_observations(ctx, items, bodies, name, targets, opts)
            continue
        for item, body, target in zip(items, bodies, targets, strict=True):
            link = f"{self_link(ctx, type_, item.id)}/{name}"
            if isinstance(target, list):
                sub = await collection(ctx, target_type, target, opts, link)
                body[name] = sub["value"]
                if "@iot.count" in sub:
                    body[f"{name}@iot.count"] = sub["@iot.count"]
                if "@iot.nextLink" in sub:
                    body[f"{name}@iot.nextLink"] = sub["@iot.nextLink"]
            elif target is None:
                body[name] = None
            else:
                assert isinstance(target, Entity | Row)
                body[name] = serialise(ctx, target, opts.select)
                await expand(ctx, target_type, [target], [body[name]], opts.expand)


async def _expand_observations(ctx: Context, items: Sequence[Any], bodies: list[dict[str, Any]], name: str,
                               targets: list[Any], opts: options.Options) -> None:
    if opts.skiptoken is not None:
        raise bad_request("$skiptoken applies to a collection's own pages")
    if opts.count:  # every item's count in one InfluxDB request, not one each
        scoped = [obs_filter(ctx, target, opts) for target in targets]
        if scoped:
            numbers = await scan.counts(ctx.influx, ctx.cat, [d for d, _ in scoped], scoped[0][1],
                                        _row_resolver(ctx))
            for body, n in zip(bodies, numbers, strict=True):
                body[f"{name}@iot.count"] = n
        opts = options.without_count(opts)  # counted: the pages below need not
        if opts.limit == 0:  # counts only (a page of none per item costs a catalogue walk each)
            for body in bodies:
                body[name] = []
            return
    if _is_latest(opts) and all(isinstance(i, Entity) and i.type == "Datastream" for i in items):
        # The map request: the latest Observation of every Datastream in one InfluxDB request.
        datastreams, filt = obs_filter(ctx, ObsSource([i for i in items]), opts)
        latest = await observations.latest(ctx.influx, ctx.cat, datastreams, filt)
        for item, body in zip(items, bodies, strict=True):
            row = latest.get(item.id)
            body[name] = [serialise(ctx, row, opts.select)] if row else []
            if row is not None:
                await expand(ctx, "Observation", [row], body[name], opts.expand)
        return
    link_of = [f"{self_link(ctx, type_of(i), i.id)}/{name}" for i in items]
    subs = await asyncio.gather(*(collection(ctx, "Observation", t, opts, link)
                                  for t, link in zip(targets, link_of, strict=True)))
    for body, sub in zip(bodies, subs, strict=True):
        body[name] = sub["value"]
        if "@iot.nextLink" in sub:
            body[f"{name}@iot.nextLink"] = sub["@iot.nextLink"]


# -- the request -----------------------------------------------------------------------------

@dataclass(slots=True)
class Result:
    body: Any
    text: bool = False  # $value: plain text
    status: int = 200
    stream: Streamed | None = None  # a collection's bytes, streamed (``body`` is None)


async def resolve(ctx: Context, path: str, pairs: list[tuple[str, str]]) -> Result:
    segments = parse_path(path)
    opts = options.parse(pairs)
    first = segments[0]
    if first.name not in SETS:
        raise not_found("no such entity set (the service root lists them)")
    type_ = SETS[first.name]
    base = f"{ctx.root}/{first.name}"
    current: Any
    is_set = True
    if type_ == "Observation":
        current = ObsSource(list(ctx.cat.all("Datastream")))
    else:
        current = list(ctx.cat.all(type_))
    rest = segments
    while rest:
        seg, rest = rest[0], rest[1:]
        if seg is not first:
            if seg.name in ("$ref", "$value"):
                rest = [seg, *rest]
                break
            if is_set:
                raise bad_request("address one entity before its properties, as in Things(1)/name")
            if seg.name not in NAVIGATION[type_]:
                if seg.name in PROPERTIES[type_]:
                    return await _property(ctx, current, seg, rest, opts)
                raise not_found(f"{type_} has no such property or navigation")
            target_type, is_set = NAVIGATION[type_][seg.name]
            base = f"{self_link(ctx, type_, current.id)}/{seg.name}"
            current = navigate(ctx.cat, current, seg.name)
            type_ = target_type
            if current is None:
                raise not_found(f"this entity has no {seg.name}")
        if seg.key is not None:
            if not is_set:
                raise bad_request("a single entity takes no id")
            current = await _member(ctx, type_, current, seg.key)
            is_set = False
            base = self_link(ctx, type_, current.id)
    if rest:
        (seg, *more) = rest
        if seg.name == "$ref" and not more:
            return Result(await _refs(ctx, type_, current, is_set, opts, base))
        raise bad_request("$value follows a property; $ref ends a path")
    if is_set:
        assert isinstance(current, list | ObsSource)
        if isinstance(current, ObsSource):
            streamed = await stream_observations(ctx, current, opts, base)
            if streamed is not None:
                return Result(None, stream=streamed)
        return Result(await collection(ctx, type_, current, opts, base))
    _check_select(type_, opts.select)
    if opts.filter is not None or opts.orderby or opts.top is not None or opts.skip:
        pass  # ignored on a single entity, as the standard says
    body = serialise(ctx, current, opts.select)
    await expand(ctx, type_, [current], [body], opts.expand)
    return Result(body)


async def _member(ctx: Context, type_: str, current: list[Entity] | ObsSource, key: int) -> Entity | Row:
    if isinstance(current, ObsSource):
        ds_id, _ = ids.split_observation(key)
        if not any(ds.id == ds_id for ds in current.datastreams):
            raise not_found("no such Observation")
        row = await observations.by_id(ctx.influx, ctx.cat, key)
        if row is None:
            raise not_found("no such Observation")
        return row
    for e in current:
        if e.id == key:
            return e
    raise not_found(f"no such {type_}")


async def _property(ctx: Context, item: Any, seg: Segment, rest: list[Segment],
                    opts: options.Options) -> Result:
    if seg.key is not None:
        raise bad_request("a property takes no id")
    value = (observations.to_json(item) if isinstance(item, Row) else item.props).get(seg.name)
    if not rest:
        return Result({seg.name: value})
    if len(rest) == 1 and rest[0].name == "$value" and rest[0].key is None:
        if value is None:
            return Result("", text=True, status=204)
        text = value if isinstance(value, str) else json.dumps(value)
        return Result(text, text=True)
    raise bad_request("only $value may follow a property")


async def _refs(ctx: Context, type_: str, current: Any, is_set: bool, opts: options.Options,
                base: str) -> dict[str, Any]:
    if not is_set:
        return {"@iot.selfLink": self_link(ctx, type_, current.id)}
    opts.select = ["@iot.selfLink"]
    opts.expand = []
    out = await collection(ctx, type_, current, opts, f"{base}/$ref")
    return out
