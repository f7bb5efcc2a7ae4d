"""/v1/stations/{station}/measurements and /v1/measurements: readings and aggregates over a
time range, for one station or many at once.

Raw readings are paged on time: a page ends on a whole timestamp (every row of one
timestamp is on the same page), and ``meta.paging.next_cursor`` is the timestamp
where the next page starts, so no row is repeated or skipped. CSV without ``limit``
streams the whole range page by page.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api import catalog, rollups
from api.deps import InfluxDep, SettingsDep
from api.envelope import envelope, units_for
from api.errors import ApiError
from api.filters import (
    MeasurementsQuery,
    StationListFilter,
    StationMeasurementsQuery,
    encode_cursor,
)
from api.formats import csv_response, csv_stream, json_response, negotiate
from api.schemas import MeasurementsResponse, example, responses
from api.settings import ApiSettings
from civicair import influxql
from civicair.influx import AsyncInflux, series
from civicair.schema import contract

router = APIRouter(prefix="/v1", tags=["measurements"])

StationId = Annotated[
    str, Path(pattern=f"^{contract.STATION_ID_PATTERN}$", description="Station id", examples=["lab-1"])
]
INTERVAL_S = {"1h": 3600, "1d": 86400}
#: Tags first in every row, then the fields in the database's (alphabetical) order.
LEADING = ("time", "station", "sensor", "channel")

_EXAMPLE = example(
    [{"time": "2026-01-01T00:00:00Z", "pm25_mean": 7.4, "pm25_max": 9.1},
     {"time": "2026-01-01T01:00:00Z", "pm25_mean": 6.9, "pm25_max": 8.0}],
    units={"pm25_mean": "µg/m³", "pm25_max": "µg/m³"},
    query={"station": "lab-1", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "tz": "UTC",
           "interval": "1h", "params": ["pm25"], "aggregates": ["mean", "max"], "include_flagged": False},
)


@router.get("/stations/{station}/measurements", summary="Readings or aggregates of one station",
            response_model=None, responses=responses(MeasurementsResponse, _EXAMPLE, csv=True))
async def station_measurements(station: StationId, q: Annotated[StationMeasurementsQuery, Query()],
                               request: Request, influx: InfluxDep, settings: SettingsDep) -> Response:
    """Raw readings (every field, or `params`), or hourly/daily aggregates of `params`.

    Times are UTC unless `tz` is given. Aggregates leave out flagged readings unless
    `include_flagged=true`; intervals without data are left out (no fill)."""
    q.check(settings)
    return await serve(request, influx, settings, q, [station], by_station=False, echo={"station": station})


@router.get("/measurements", summary="Readings or aggregates of many stations at once",
            response_model=None, responses=responses(MeasurementsResponse, _EXAMPLE, csv=True))
async def measurements(q: Annotated[MeasurementsQuery, Query()], request: Request, influx: InfluxDep,
                       settings: SettingsDep) -> Response:
    """As `/stations/{station}/measurements`, for the stations listed in `stations` and/or
    inside `bbox` / `near` (matched on published positions). Every row names its station;
    aggregates come station by station, raw readings in time order."""
    q.check(settings)
    stations = q.station_ids
    if q.has_area:
        in_area = catalog.in_area(await catalog.load_meta(influx), q)
        stations = [s for s in in_area if s in set(stations)] if stations else in_area
        if len(stations) > settings.max_stations:
            raise ApiError(422, "too_many_stations", f"{len(stations)} stations match; at most "
                                                     f"{settings.max_stations}: narrow the area")
    q.resolve(stations)
    return await serve(request, influx, settings, q, stations, by_station=True, echo={})


async def serve(request: Request, influx: AsyncInflux, settings: ApiSettings, q: Any, stations: list[str],
                *, by_station: bool, echo: dict) -> Response:
    fmt = negotiate(request, q.format, q.formats)
    query = echo | q.echo()
    if q.aggregated and (q.cursor or q.limit):
        raise ApiError(422, "invalid_combination",
                       "`cursor` and `limit` page raw readings; aggregates come whole")
    if q.aggregated:
        return await serve_aggregates(influx, settings, q, stations, by_station, fmt, query,
                                      request.app.state.rollup_coverage)
    return await serve_raw(request, influx, settings, q, stations, fmt, query)


def _parts(q: Any, stations: list[str]) -> list[str]:
    """WHERE fragments: the stations, then every filter but the station list (resolved here)."""
    return [influxql.stations_in(stations), *q.fragments(without=(StationListFilter,))] if stations else []


# -- aggregates ----------------------------------------------------------------------------------


async def serve_aggregates(influx: AsyncInflux, settings: ApiSettings,
                           q: StationMeasurementsQuery | MeasurementsQuery, stations: list[str],
                           by_station: bool, fmt: str, query: dict,
                           coverage: rollups.Coverage | None = None) -> Response:
    plan = await rollups.plan(influx, coverage, q.param_list, q.aggregate_list, q.interval, q.tz_name,
                              q.start, q.end)
    # The rollups' higher cap holds for what they answer; the parts read raw (the edges, the
    # hours after the worker's watermark: all of it when the worker is far behind) keep the raw cap.
    def count(start: datetime, end: datetime) -> int:
        return math.ceil((end - start).total_seconds() / INTERVAL_S[q.interval]) + 1

    raw_buckets = sum(count(a, b) for a, b in plan.raw)
    whole = settings.max_rollup_buckets if plan.rollup else settings.max_buckets
    for buckets, cap, what in ((count(q.start, q.end), whole, ""),
                               (raw_buckets, settings.max_buckets, " read raw (not yet rolled up)")):
        if buckets * max(1, len(stations)) > cap:
            raise ApiError(422, "too_many_rows",
                           f"{len(stations)} station(s) × {buckets} intervals{what} exceeds {cap}; "
                           "narrow the range, use interval=1d or fewer stations")
    columns: list[str] = ["time", *(f"{p}_{a}" for p in q.param_list for a in q.aggregate_list)]
    if by_station:
        columns.insert(1, "station")
    rows: list[Sequence[Any]] = []
    source = plan.source(q.interval)
    if stations:
        result, source = await rollups.aggregates(
            influx, coverage, plan, q.param_list, q.aggregate_list, stations, q.start, q.end, q.interval,
            by_station, q.tz_name, q.excludes_flagged())
        for s in series(result):
            if by_station:
                station = s["tags"]["station"]
                rows.extend([r[0], station, *r[1:]] for r in s["values"])
            else:
                rows = s["values"]
    units = units_for(columns)
    if fmt == "csv":
        response = csv_response(columns, units, rows, settings, "measurements")
        response.headers["X-Civicair-Source"] = source
        return response
    results = [dict(zip(columns, r, strict=True)) for r in rows]
    return json_response(envelope(settings, results, query, units=units, source=source), settings)


# -- raw readings ----------------------------------------------------------------------------------


def _order(columns: Sequence[str]) -> list[int]:
    lead = [columns.index(c) for c in LEADING if c in columns]
    return lead + [i for i, c in enumerate(columns) if c not in LEADING]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def fetch_page(influx: AsyncInflux, select: str, parts: list[str], limit: int,
                     tz: str | None) -> tuple[list[str], list[list[Any]], datetime | None]:
    """One page of raw rows in time order, ending on a whole timestamp.

    Returns (columns, rows, start of the next page or None on the last page).
    """
    (result,) = await influx.query(influxql.select_raw(select, parts, limit + 1, tz), epoch=None)
    found = series(result)
    if not found:
        return [], [], None
    columns, values = found[0]["columns"], found[0]["values"]
    if len(values) <= limit:
        return columns, values, None
    boundary = values[limit][0]
    cut = limit
    while cut > 0 and values[cut - 1][0] == boundary:
        cut -= 1
    if cut > 0:
        return columns, values[:cut], _parse_time(boundary)
    # More rows share one timestamp than a page holds: that timestamp goes out whole, and
    # the first row after it (if any) says where the next page starts.
    at = _parse_time(boundary)
    whole, after = await influx.query(influxql.statements(
        influxql.select_raw(select, [*parts, influxql.time_at(at)], None, tz),
        influxql.select_raw(select, [*parts, influxql.time_after(at)], 1, tz),
    ), epoch=None)
    found, following = series(whole), series(after)
    start_next = _parse_time(following[0]["values"][0][0]) if following else None
    return found[0]["columns"], found[0]["values"], start_next


async def serve_raw(request: Request, influx: AsyncInflux, settings: ApiSettings, q: Any, stations: list[str],
                    fmt: str, query: dict) -> Response:
    select = influxql.raw_columns(q.param_list)
    base = _parts(q, stations)
    stream = fmt == "csv" and q.limit is None
    limit = settings.max_rows if stream else q.page_size(settings)
    columns: list[str]
    rows: list[list[Any]]
    following: datetime | None
    if not stations:
        columns, rows, following = [], [], None
    else:
        columns, rows, following = await fetch_page(influx, select, base, limit, q.tz_name)

    if fmt == "csv":
        header = await _csv_columns(influx, q)
        page = _reorder(columns, header, rows)
        units = units_for(header)
        if following is None or not stream:
            response = csv_response(header, units, page, settings, "measurements")
            if following is not None:
                response.headers["Link"] += f', <{_next_url(request, following)}>; rel="next"'
            return response
        await _check_csv_size(influx, settings, base)
        return csv_stream(header, units, _pages(influx, select, base, q.tz_name, limit,
                                                page, following, columns, header), settings, "measurements")

    order = _order(columns)
    keys = [columns[i] for i in order]
    results = [{k: row[i] for k, i in zip(keys, order, strict=True) if row[i] is not None} for row in rows]
    paging = {"limit": limit, "next_cursor": encode_cursor(int(following.timestamp())) if following else None,
              "next": _next_url(request, following) if following else None}
    units = units_for([k for k in keys if k != "time"]) if keys else {}
    return json_response(envelope(settings, results, query, units=units, paging=paging), settings)


def _next_url(request: Request, following: datetime) -> str:
    url = request.url.include_query_params(cursor=encode_cursor(int(following.timestamp())))
    return f"{url.path}?{url.query}"


async def _csv_columns(influx: AsyncInflux, q: Any) -> list[str]:
    """The CSV header, fixed before the first row: the chosen parameters, or with every
    field (``*``) the measurement's whole field list, not just the first page's."""
    if q.param_list:
        return ["time", *influxql.TAGS, *q.param_list, *([] if "qc" in q.param_list else ["qc"])]
    (result,) = await influx.query(influxql.field_keys())
    return ["time", *influxql.TAGS, *sorted(row[0] for s in series(result) for row in s["values"])]


def _reorder(columns: Sequence[str], header: Sequence[str], rows: list[list[Any]]) -> list[list[Any]]:
    if list(columns) == list(header):
        return rows
    index = {c: i for i, c in enumerate(columns)}
    picks = [index.get(c) for c in header]
    return [[row[i] if i is not None else None for i in picks] for row in rows]


async def _check_csv_size(influx: AsyncInflux, settings: ApiSettings, parts: list[str]) -> None:
    (result,) = await influx.query(influxql.count_rows(parts))
    found = series(result)
    total = found[0]["values"][0][1] if found else 0
    if total > settings.max_csv_rows:
        raise ApiError(422, "too_many_rows", f"{total} readings exceed the CSV limit of "
                                             f"{settings.max_csv_rows}; narrow the range or the stations, "
                                             "or page with `limit`")


async def _pages(influx: AsyncInflux, select: str, parts: list[str], tz: str | None, limit: int,
                 first: list[list[Any]], following: datetime | None, columns: list[str],
                 header: list[str]) -> AsyncIterator[list[list[Any]]]:
    yield first
    while following is not None:
        columns, rows, following = await fetch_page(influx, select, [*parts, influxql.time_from(following)],
                                                    limit, tz)
        yield _reorder(columns, header, rows)
