"""/v1/aqi: per station, the US EPA AQI of the 24-hour mean and the WHO 2021 comparison."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import catalog, rollups
from api.deps import InfluxDep, SettingsDep
from api.envelope import envelope
from api.errors import ApiError
from api.filters import AqiQuery
from api.formats import csv_response, json_response, negotiate
from api.schemas import AqiResponse, example, responses
from api.stationmeta import StationMeta
from civicair import influxql
from civicair.influx import AsyncInflux, series
from civicair.schema import aqi
from civicair.schema.timefmt import format_time

router = APIRouter(prefix="/v1", tags=["aqi"])

COLUMNS = ("station", "name", "lat", "lon", "aqi", "aqi_category", "aqi_colour", "pm25_24h", "hours_24h",
           "aqi_valid", "who_days", "who_valid_days", "who_days_above_24h", "who_mean",
           "who_mean_above_annual")
UNITS = {"pm25_24h": "µg/m³", "who_mean": "µg/m³"}
#: EPA: a 24-hour mean needs 18 of its 24 hourly means (75 %); the same share makes a valid day.
MIN_HOURS = 18
MIN_DAY_FRACTION = 0.75

_EXAMPLE = {"station": "lab-1", "name": "Lab 1", "lat": 52.091, "lon": 5.121, "aqi": 57,
            "aqi_category": "Moderate", "aqi_colour": "#FFFF00", "pm25_24h": 12.4, "hours_24h": 24,
            "aqi_valid": True, "who_days": 365, "who_valid_days": 351, "who_days_above_24h": 41,
            "who_mean": 9.8, "who_mean_above_annual": True}


def hour_floor(t: datetime, tz) -> datetime:
    """``t`` down to the start of its hour in ``tz`` (zones with half-hour offsets differ)."""
    local = t.astimezone(tz) if tz else t
    return local.replace(minute=0, second=0, microsecond=0).astimezone(t.tzinfo)


@router.get("/aqi", summary="US AQI (24-hour mean) and WHO 2021 comparison per station", response_model=None,
            responses=responses(AqiResponse, example([_EXAMPLE]), csv=True))
async def aqi_endpoint(q: Annotated[AqiQuery, Query()], request: Request, influx: InfluxDep,
                       settings: SettingsDep) -> Response:
    """The US EPA PM2.5 AQI (2024 breakpoints) of the mean of the 24 whole hours before `to`
    (default now), and over [`from`, `to`) (default the last 365 days) the WHO 2021
    comparison: days whose mean exceeds 15 µg/m³ and the mean of the daily means against
    the annual 5 µg/m³. Only readings without a quality flag count unless
    `include_flagged=true`; a day counts when it holds 75 % of its expected readings."""
    q.check(settings)
    fmt = negotiate(request, q.format, q.formats)
    meta_result, ids_result = await influx.query(influxql.statements(influxql.station_meta(),
                                                                     influxql.station_ids()))
    metas = catalog.parse_meta(meta_result)
    known = sorted(set(metas) | {row[1] for s in series(ids_result) for row in s["values"]})
    stations = q.station_ids or known
    if q.has_area:
        stations = [s for s in catalog.in_area(metas, q) if s in set(stations)]
    days = (q.end - q.start).days + 1
    if len(stations) * days > settings.max_buckets:
        raise ApiError(422, "too_many_rows", f"{len(stations)} stations × {days} days exceeds "
                                             f"{settings.max_buckets}; narrow `from`, the area or the "
                                             "stations")
    rows = []
    source = rollups.RAW
    if stations:
        results, source = await aqi_results(influx, request.app.state.rollup_coverage, q, stations)
        rows = aqi_rows(results, stations, metas)
    end = hour_floor(q.end, q.zone)
    window = {"aqi_from": format_time((end - timedelta(hours=24)).timestamp(), q.zone),
              "aqi_to": format_time(end.timestamp(), q.zone)}
    body = envelope(settings, rows, q.echo() | window, units=UNITS, source=source)
    if fmt == "csv":
        response = csv_response(COLUMNS, UNITS, ([r[c] for c in COLUMNS] for r in rows), settings, "aqi")
        response.headers["X-Civicair-Source"] = source
        return response
    return json_response(body, settings)


def _published(mean: float | None) -> float | None:
    """A mean as the API shows it: rounded like every other mean (``influxql.decimals``);
    the AQI and the WHO comparisons use the unrounded value."""
    return None if mean is None else round(mean, influxql.decimals("pm25"))


def aqi_statements(q: AqiQuery, stations: list[str]) -> str:
    where = [influxql.stations_in(stations)]
    quality = [influxql.clean_only()] if q.excludes_flagged() else []
    end = hour_floor(q.end, q.zone)
    last_day = influxql.time_range(end - timedelta(hours=24), end)
    period = influxql.time_range(q.start, q.end)
    return influxql.statements(
        # Unrounded: the AQI truncates the 24-hour mean itself, and the WHO means average these.
        influxql.select_aggregates(["pm25"], ["mean"], [*where, last_day, *quality], "1h", True, q.tz_name,
                                   rounded=False),
        influxql.select_aggregates(["pm25"], ["mean", "count"], [*where, period, *quality], "1d", True,
                                   q.tz_name, rounded=False),
        influxql.last_window([*where, period]),
    )


async def aqi_results(influx: AsyncInflux, coverage: rollups.Coverage | None, q: AqiQuery,
                      stations: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The results of :func:`aqi_statements`, the hourly and daily means from the rollups
    where they cover the range (rollups.aggregates); the source of the daily means (the
    longer part) names the response's source, or the hourly means' when every daily mean
    came from raw and some hourly ones from the rollups."""
    if coverage is None:
        return await influx.query(aqi_statements(q, stations)), rollups.RAW
    end = hour_floor(q.end, q.zone)
    clean = q.excludes_flagged()
    out, sources = [], []
    for params, aggs, start, stop, interval in ((["pm25"], ["mean"], end - timedelta(hours=24), end, "1h"),
                                                (["pm25"], ["mean", "count"], q.start, q.end, "1d")):
        plan = await rollups.plan(influx, coverage, params, aggs, interval, q.tz_name, start, stop)
        result, source = await rollups.aggregates(influx, coverage, plan, params, aggs, stations, start, stop,
                                                  interval, True, q.tz_name, clean, rounded=False, epoch="s")
        out.append(result)
        sources.append(source)
    (last,) = await influx.query(influxql.last_window([influxql.stations_in(stations),
                                                       influxql.time_range(q.start, q.end)]))
    hourly, daily = sources
    return [*out, last], daily if daily != rollups.RAW else hourly


def aqi_rows(results: list[dict[str, Any]], stations: list[str], metas: dict[str, StationMeta]) -> list[dict]:
    """Response rows from the hourly, daily and last-seen results (pure)."""
    hourly = {s["tags"]["station"]: [v[1] for v in s["values"] if v[1] is not None]
              for s in series(results[0])}
    daily = {s["tags"]["station"]: [(v[1], v[2]) for v in s["values"] if v[1] is not None]
             for s in series(results[1])}
    windows = {station: window for station, (_, window, _) in catalog.parse_last_seen(results[2]).items()}
    rows = []
    for station in stations:
        meta = metas.get(station) or StationMeta(station)
        lat, lon = meta.published_position()
        hours = hourly.get(station, [])
        mean_24h = sum(hours) / len(hours) if hours else None
        index = aqi.us_aqi(mean_24h)
        expected = meta.windows_per_day(windows.get(station) or 60)  # a duty-cycled station: fewer
        day_means = daily.get(station, [])
        valid = [mean for mean, count in day_means if count >= MIN_DAY_FRACTION * expected]
        who_mean = sum(valid) / len(valid) if valid else None
        rows.append({
            "station": station, "name": meta.name or station, "lat": lat, "lon": lon,
            "aqi": index.value if index else None,
            "aqi_category": index.category if index else None,
            "aqi_colour": index.colour if index else None,
            "pm25_24h": _published(mean_24h),
            "hours_24h": len(hours),
            "aqi_valid": len(hours) >= MIN_HOURS,
            "who_days": len(day_means),
            "who_valid_days": len(valid),
            "who_days_above_24h": sum(1 for m in valid if aqi.above_who_24h(m)),
            "who_mean": _published(who_mean),
            "who_mean_above_annual": aqi.above_who_annual(who_mean) if who_mean is not None else None,
        })
    return rows
