"""Hourly and daily aggregates from the rollups where they cover the range (docs/rollups.md).

A request's range is split into whole intervals the rollups cover (answered from
``pm_1h``/``pm_1d``) and the edges (a partial first or last interval, and the hours
after the worker's coverage watermark), answered from raw with the API's usual query.
The parts go to InfluxDB in one request, and come back merged into the shape of the
one raw statement they replace (a result with one series per station), so the routers
parse both the same way. The rollups hold InfluxDB's own means of the same readings,
so values are identical; ``meta.source`` says which was used (the rollup when rows of the
answer came from it, or it answered the whole range; otherwise raw).

Owns the watermark cache and the split; must not own the statistics' names (schema)
or the query text (civicair.influxql).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from civicair import influxql
from civicair.influx import AsyncInflux, InfluxRejected, series

log = logging.getLogger("civicair.api")

STEP = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
SOURCES = {"1h": "rollup_1h", "1d": "rollup_1d"}
RAW = "raw"


@dataclass(slots=True)
class Coverage:
    """The worker's watermark, read from InfluxDB at most every ``ttl_s`` seconds."""

    rp: str | None
    ttl_s: float = 5.0
    _until: int | None = None
    _read_at: float = field(default=-1e18)
    _unreadable: bool = False  # logged once when it becomes unreadable, once when readable again

    async def until(self, influx: AsyncInflux) -> datetime | None:
        if time.monotonic() - self._read_at > self.ttl_s:
            try:
                (result,) = await influx.query(influxql.rollup_state(self.rp), epoch="s")
                if self._unreadable:
                    log.info("rollup state readable again: serving from the rollups where they cover")
                self._unreadable = False
            except InfluxRejected as exc:  # e.g. the rollups' retention policy does not exist
                if not self._unreadable:
                    hint = (f" (CIVICAIR_ROLLUP_RP={self.rp} names a retention policy the database lacks: "
                            "`civicair rollup init` creates it)") if exc.missing_policy else ""
                    log.warning("rollup state unreadable, serving raw: %s%s", exc, hint)
                self._unreadable = True
                result = {}
            found = series(result)
            self._until = int(found[0]["values"][0][2]) if found else None
            self._read_at = time.monotonic()
        return datetime.fromtimestamp(self._until, UTC) if self._until is not None else None


@dataclass(frozen=True, slots=True)
class Split:
    rollup: tuple[datetime, datetime] | None
    raw: tuple[tuple[datetime, datetime], ...]

    def source(self, interval: str, rollup_rows: bool = False) -> str:
        """``meta.source``: the rollup's when rows of the answer came from it (the edges, if
        any, are raw, as documented), or when it answered the whole range (even with no
        rows: raw was not read); ``raw`` when every row came from raw, e.g. a rollup part
        that held nothing before a current hour that did."""
        return SOURCES[interval] if self.rollup and (rollup_rows or not self.raw) else RAW


def _floor(t: datetime, step: timedelta) -> datetime:
    s = int(step.total_seconds())
    return datetime.fromtimestamp(int(t.timestamp()) // s * s, UTC)


def _ceil(t: datetime, step: timedelta) -> datetime:
    down = _floor(t, step)
    return down if down == t else down + step


def _whole_hour_offsets(tz: str, start: datetime, end: datetime) -> bool:
    zone = ZoneInfo(tz)
    probes = [start, end] + [datetime(y, m, 1, tzinfo=UTC) for y in range(start.year, end.year + 1)
                             for m in (1, 4, 7, 10)]
    return all((p.astimezone(zone).utcoffset() or timedelta()).total_seconds() % 3600 == 0 for p in probes)


def usable(params: Sequence[str], aggregates: Sequence[str], interval: str, tz: str | None,
           start: datetime, end: datetime) -> bool:
    """Whether the rollups can answer at all: rolled-up parameters, no median, and buckets
    that are UTC hours (any zone with whole-hour offsets) or UTC days."""
    if not set(params) <= set(influxql.ROLLUP_PARAMS) or not set(aggregates) <= influxql.ROLLUP_AGGREGATES:
        return False
    if tz is None or tz in influxql.UTC_NAMES:
        return True
    return interval == "1h" and _whole_hour_offsets(tz, start, end)


def split(start: datetime, end: datetime, interval: str, covered_until: datetime | None) -> Split:
    """Whole intervals in [start, min(end, covered_until)) from the rollups; the rest raw."""
    step = STEP[interval]
    if covered_until is None:
        return Split(None, ((start, end),))
    a, b = _ceil(start, step), _floor(min(end, covered_until), step)
    if a >= b:
        return Split(None, ((start, end),))
    raw = tuple(r for r in ((start, a), (b, end)) if r[0] < r[1])
    return Split((a, b), raw)


def _strip(columns: list[str], values: list[list[Any]], params: Sequence[str]) -> list[list[Any]]:
    """Drop the hidden counts; null a parameter's columns where its clean count is 0; drop
    rows left empty (as ``fill(none)`` drops them from raw)."""
    index = {c: i for i, c in enumerate(columns)}
    keep = [i for i, c in enumerate(columns) if not c.endswith(influxql.COUNT_SUFFIX)]
    masks = [(index[f"{p}{influxql.COUNT_SUFFIX}"],
              [i for i, c in enumerate(columns) if c.rpartition("_")[0] == p]) for p in params]
    out = []
    for row in values:
        row = list(row)
        for n, cols in masks:
            if not row[n]:
                for i in cols:
                    row[i] = None
        kept = [row[i] for i in keep]
        if any(v is not None for v in kept[1:]):
            out.append(kept)
    return out


async def plan(influx: AsyncInflux, coverage: Coverage | None, params: Sequence[str], aggs: Sequence[str],
               interval: str, tz: str | None, start: datetime, end: datetime) -> Split:
    """Which part of [start, end) the rollups answer (all raw without ``coverage``)."""
    if coverage is None or not usable(params, aggs, interval, tz, start, end):
        return Split(None, ((start, end),))
    return split(start, end, interval, await coverage.until(influx))


async def aggregates(influx: AsyncInflux, coverage: Coverage | None, plan: Split, params: Sequence[str],
                     aggs: Sequence[str], stations: Sequence[str], start: datetime, end: datetime,
                     interval: str, by_station: bool, tz: str | None, clean: bool,
                     rounded: bool = True, epoch: str | None = None) -> tuple[dict[str, Any], str]:
    """The result of the API's aggregate statement over [start, end) following ``plan``, and
    its source."""
    where = [influxql.stations_in(stations)]
    quality = [influxql.clean_only()] if clean else []

    def raw(a: datetime, b: datetime) -> str:
        return influxql.select_aggregates(params, aggs, [*where, influxql.time_range(a, b), *quality],
                                          interval, by_station, tz, rounded)

    if plan.rollup is None:
        (result,) = await influx.query(raw(start, end), epoch=epoch)
        return result, RAW
    a, b = plan.rollup
    stmts = [influxql.select_rollup(params, aggs, [*where, influxql.time_range(a, b)], interval, by_station,
                                    clean, rounded, coverage.rp if coverage else None, tz)]
    stmts += [raw(*r) for r in plan.raw]
    results = await influx.query(influxql.statements(*stmts), epoch=epoch)
    parts: dict[str | None, list[tuple[datetime, list[list[Any]]]]] = {}
    columns: list[str] | None = None
    rollup_rows = False
    for i, result in enumerate(results):
        for s in series(result):
            key = s.get("tags", {}).get("station") if by_station else None
            if i == 0:
                values = _strip(s["columns"], s["values"], params)
                cols = [c for c in s["columns"] if not c.endswith(influxql.COUNT_SUFFIX)]
                at = a
            else:
                values, cols, at = s["values"], s["columns"], plan.raw[i - 1][0]
            columns = columns or cols
            if values:
                parts.setdefault(key, []).append((at, values))
                rollup_rows = rollup_rows or i == 0
    if columns is None:
        return {"statement_id": 0}, plan.source(interval, rollup_rows)
    merged = []
    for key in sorted(parts, key=lambda k: k or ""):
        rows = [row for _, values in sorted(parts[key], key=lambda p: p[0]) for row in values]
        merged.append({"name": influxql.MEASUREMENT, **({"tags": {"station": key}} if by_station else {}),
                       "columns": columns, "values": rows})
    return {"statement_id": 0, "series": merged}, plan.source(interval, rollup_rows)
