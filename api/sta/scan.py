"""Observations whose ``$filter`` InfluxDB cannot answer alone, and counts per Datastream.

A filter part InfluxDB cannot evaluate exactly (``month(phenomenonTime) eq 3``, an ``or`` of
separate time ranges, ``phenomenonTime lt … or result gt …``: ``ObsFilter.residual``) is
evaluated here on each row that the rest of the filter lets through (the InfluxQL condition
being a superset). Pages stay keyset-paged and exact: rows are read in chunks after the cursor
until the page is full or the range is exhausted, at most :data:`MAX_SCANNED` rows per request;
past that the page is short and its nextLink continues from the last row read (the standard
lets a server return fewer rows than ``$top`` with a nextLink). ``$count`` reads every row,
within the same bound, or answers 501 rather than a wrong count.

Rows are fetched through :func:`api.sta.observations.page`, so the InfluxQL (and the fast paths)
stay in one place. Owns nothing of rendering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.sta import filter as sta_filter
from api.sta import observations
from api.sta.errors import not_implemented
from api.sta.model import OBSERVED_PROPERTIES, Catalogue, Entity
from api.sta.observations import ObsFilter, Row, Rows
from civicair import influxql
from civicair.influx import AsyncInflux, series

#: Rows one request reads at most to apply a residual filter (a page, or a count).
MAX_SCANNED = 50_000
#: Rows asked of InfluxDB at a time while scanning.
SCAN_CHUNK = 5_000

Key = tuple[int, int]
Resolver = Callable[[Row], Callable[[tuple[str, ...]], Any]]


def matcher(node: Any, resolver: Resolver) -> Callable[[Rows], list[int]]:
    """``node`` as a test of rows: the positions of those where it holds. Their time
    (phenomenonTime and resultTime both mean the stored time, the window end, as in the InfluxQL
    bounds) and result are read from the columns; other paths (``Datastream/…``) go through
    ``resolver`` (the catalogue's, api/sta/engine.py) on a :class:`Row` made for them."""
    def holds(rows: Rows) -> list[int]:
        return [i for i, value in enumerate(values(node, rows, resolver)) if sta_filter.truthy(value)]
    return holds


def values(node: Any, rows: Rows, resolver: Resolver) -> list[Any]:
    """``node`` evaluated on each row (as :func:`matcher` reads them)."""
    results = rows.values.get("result") or [None] * len(rows)
    out = []
    for i, t in enumerate(rows.t):
        when = datetime.fromtimestamp(t, UTC) if isinstance(t, int) else sta_filter._time(t)
        result = results[i]

        def get(path: tuple[str, ...], i: int = i, when: Any = when, result: Any = result) -> Any:
            if path in observations.TIME_PATHS:
                return when
            if path == ("result",):
                return result
            if path in (("id",), ("@iot.id",)):
                return rows.id[i]
            return resolver(rows[i])(path)
        out.append(sta_filter.evaluate(node, get))
    return out


def _none() -> Rows:
    return Rows([], [], [], [], {})


async def filtered_page(influx: AsyncInflux, cat: Catalogue, datastreams: list[Entity], filt: ObsFilter,
                        descending: bool, limit: int, skip: int, cursor: Key | None,
                        resolver: Resolver) -> tuple[Rows, bool, Key | None]:
    """A page (as :func:`api.sta.observations.page`, rendered as it arrived), whether a nextLink
    follows, and the key it continues after."""
    if filt.residual is None:
        rows, more = await observations.page(influx, cat, datastreams, filt, descending, limit, skip, cursor)
        return rows, more, (rows.t[-1], rows.id[-1]) if more and len(rows) else None
    if limit == 0:
        return _none(), False, None
    holds = matcher(filt.residual, resolver)
    want = skip + limit + 1
    parts: list[Rows] = []
    matched = scanned = 0
    key = cursor
    exhausted = False
    while matched < want:
        budget = MAX_SCANNED - scanned
        if budget <= 0:  # the bound: a short page, continued from the last row read
            if matched <= skip and skip:
                raise not_implemented(f"$skip over a filter evaluated row by row reads more than "
                                      f"{MAX_SCANNED} Observations; follow the nextLinks instead")
            return _joined(parts)[skip:], True, key
        rows, more = await observations.page(influx, cat, datastreams, filt, descending,
                                             min(max(2 * want, 1000), SCAN_CHUNK, budget), 0, key)
        kept = holds(rows)[:want - matched]
        if len(kept) == want - matched:  # full: the rest of this chunk is read again after the page
            rows = rows[:kept[-1] + 1]
        if kept:
            parts.append(rows.take(kept))
            matched += len(kept)
        scanned += len(rows)
        if len(rows):
            key = (rows.t[-1], rows.id[-1])
        if not more and matched < want:
            exhausted = True
            break
    page = _joined(parts)[skip:skip + limit]
    if exhausted or not len(page):
        return page, False, None
    return page, True, (page.t[-1], page.id[-1])


def _joined(parts: list[Rows]) -> Rows:
    return _none() if not parts else parts[0] if len(parts) == 1 else Rows.concat(parts)


async def filtered_count(influx: AsyncInflux, cat: Catalogue, datastreams: list[Entity], filt: ObsFilter,
                         resolver: Resolver) -> int:
    """``@iot.count``: InfluxDB's ``count()``, or every row read and tested (at most
    :data:`MAX_SCANNED`, else 501)."""
    if filt.residual is None:
        return await observations.count(influx, cat, datastreams, filt)
    holds = matcher(filt.residual, resolver)
    total = scanned = 0
    key: Key | None = None
    while True:
        rows, more = await observations.page(influx, cat, datastreams, filt, False,
                                             min(SCAN_CHUNK, MAX_SCANNED + 1 - scanned), 0, key)
        total += len(holds(rows))
        scanned += len(rows)
        if not more:
            return total
        if scanned > MAX_SCANNED:
            raise not_implemented(f"$count with this $filter would read more than {MAX_SCANNED} Observations "
                                  "one by one; narrow it by phenomenonTime, or leave $count out")
        key = (rows.t[-1], rows.id[-1])


class Budget:
    """Rows one request may read for orders InfluxDB cannot give, over all its collections (an
    ``$expand`` of Observations sorts those of every parent): :data:`MAX_SCANNED`, else 501."""

    def __init__(self, rows: int | None = None) -> None:
        self.left = MAX_SCANNED if rows is None else rows

    def spend(self, rows: int) -> None:
        self.left -= rows
        if self.left < 0:
            raise not_implemented(f"this $orderby sorts every Observation the request selects, at most "
                                  f"{MAX_SCANNED}; narrow it ($filter on phenomenonTime, one Datastream) or "
                                  "order by phenomenonTime")


async def every_row(influx: AsyncInflux, cat: Catalogue, datastreams: list[Entity], filt: ObsFilter,
                    resolver: Resolver, budget: Budget) -> Rows:
    """Every Observation the filter keeps, in (time, id) order, for an order InfluxDB cannot give
    (``$orderby=result``: api/sta/engine.py sorts them), the rows read taken from ``budget``."""
    holds = matcher(filt.residual, resolver) if filt.residual is not None else None
    parts: list[Rows] = []
    key: Key | None = None
    while True:
        rows, more = await observations.page(influx, cat, datastreams, filt, False,
                                             max(1, min(SCAN_CHUNK, budget.left)), 0, key)
        budget.spend(len(rows) + more)  # (one past the budget: 501, not a silently short answer)
        parts.append(rows.take(holds(rows)) if holds is not None else rows)
        if not more:
            return _joined(parts)
        key = (rows.t[-1], rows.id[-1])


async def counts(influx: AsyncInflux, cat: Catalogue, groups: list[list[Entity]], filt: ObsFilter,
                 resolver: Resolver) -> list[int]:
    """The number of Observations of each group of Datastreams (``$expand=Observations($count=true)``):
    ``count()`` grouped by station and channel, one statement per property, in one InfluxDB
    request (as many as keep each request short: :func:`api.sta.observations._send`)."""
    if filt.residual is not None:
        return list(await asyncio.gather(*(filtered_count(influx, cat, g, filt, resolver) for g in groups)))
    union = list({ds.id: ds for g in groups for ds in g}.values())
    stmts, indices = [], []
    for p, (whole, all_of_it) in sorted(observations._by_field(union, cat).items()):
        field_name = OBSERVED_PROPERTIES[p].field
        # Many series: one pass over all of them (the others' counts are dropped below)
        # costs InfluxDB less than a WHERE naming each one (as observations.latest does).
        many = len(whole) > observations.SERIES_PER_STATEMENT
        for group, every in [(whole, True)] if many else observations._chunks(whole, all_of_it):
            parts = [observations._scope_part(group, every), *filt.time_parts,
                     filt.value_condition(field_name)]
            stmts.append(influxql.sta_count_series(field_name, parts))
            indices.append({(ds.station, ds.channel): ds for ds in group})
    per_ds: dict[int, int] = {}
    if stmts:
        for result, index in zip(await observations._send(influx, stmts), indices, strict=True):
            for s in series(result):
                tags = s.get("tags") or {}
                ds = index.get((tags.get("station"), tags.get("channel") or "a"))
                if ds is not None and s.get("values"):
                    per_ds[ds.id] = int(s["values"][0][1])
    return [sum(per_ds.get(ds.id, 0) for ds in g) for g in groups]
