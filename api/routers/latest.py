"""/v1/latest: the latest reading of every station, with its US AQI, for maps and tickers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import catalog
from api.deps import InfluxDep, SettingsDep
from api.envelope import UNITS, envelope, units_for
from api.filters import LatestQuery
from api.formats import (
    GEOJSON_MEDIA,
    csv_response,
    feature,
    feature_collection,
    json_response,
    negotiate,
)
from api.schemas import LatestResponse, example, responses
from api.settings import ApiSettings
from api.stationmeta import StationMeta, online_status
from civicair import influxql
from civicair.influx import series
from civicair.schema import aqi, nowcast
from civicair.schema.timefmt import format_time

router = APIRouter(prefix="/v1", tags=["latest"])

#: Columns of every row; ``params`` adds its parameters after ``pm25``.
LEAD = ("station", "name", "lat", "lon", "time", "last_seen", "status", "pm25")
TAIL = ("qc", "sensor", "channel", "nowcast", "aqi", "aqi_basis", "aqi_category", "aqi_colour")
_EXAMPLE = {"station": "lab-1", "name": "Lab 1", "lat": 52.091, "lon": 5.121, "time": "2026-03-01T12:00:00Z",
            "last_seen": "2026-03-01T12:00:00Z", "status": "online", "pm25": 12.3, "qc": 0,
            "sensor": "pms5003", "channel": "a", "nowcast": 11.8, "aqi": 56, "aqi_basis": "nowcast",
            "aqi_category": "Moderate", "aqi_colour": "#FFFF00"}
_UNITS_EXAMPLE = {"pm25": "µg/m³", "nowcast": "µg/m³"}


def nowcast_hours(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the 12 complete clock hours a NowCast at ``now`` is computed from."""
    end = now.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=nowcast.HOURS), end


def hour_split(now: datetime, covered_until: datetime | None) -> tuple[datetime, datetime, datetime]:
    """(start, split, end): the NowCast's hours in [start, split) are rolled up (the rollup
    worker's watermark, docs/rollups.md), those in [split, end) are read from raw (right
    after the hour turns, the last complete hour; all of them without rollups)."""
    start, end = nowcast_hours(now)
    if covered_until is None:
        return start, start, end
    split = covered_until.replace(minute=0, second=0, microsecond=0)
    return start, min(max(split, start), end), end


def statements(q: LatestQuery, now: datetime, lookback: timedelta, covered_until: datetime | None = None,
               rp: str | None = None) -> str:
    """The statements of one /latest request (one round trip); the benchmark sends the same
    text straight to InfluxDB. The first four: latest readings, last windows, meta, status;
    then the NowCast's hourly means: from ``pm_1h`` where the rollups cover them (the same
    floats: InfluxDB's own mean of the same readings), from raw for the rest."""
    stations = [influxql.stations_in(q.station_ids)] if q.station_ids else []
    since = influxql.time_from(now - lookback)
    clean = q.excludes_flagged()
    quality = [influxql.clean_only()] if clean else []
    start, split, end = hour_split(now, covered_until)
    hourly = []
    if start < split:
        hourly.append(influxql.rollup_hourly_pm25([influxql.time_range(start, split), *stations], clean, rp))
    if split < end:
        # Unrounded hourly means: the NowCast computes further with them (as /aqi does).
        raw = [influxql.time_range(split, end), *stations, *quality]
        hourly.append(influxql.select_aggregates(["pm25"], ["mean"], raw, "1h", True, rounded=False))
    return influxql.statements(
        influxql.latest([since, *stations, *quality], q.param_list),
        influxql.last_window([since, *stations]),
        influxql.station_meta(stations, influxql.META_POSITION),
        influxql.station_status(stations),
        *hourly,
    )


@router.get("/latest", summary="Latest reading and US AQI of every station", response_model=None,
            responses=responses(LatestResponse, example([_EXAMPLE], units=_UNITS_EXAMPLE), csv=True,
                                geojson=True))
async def latest(q: Annotated[LatestQuery, Query()], request: Request, influx: InfluxDep,
                 settings: SettingsDep) -> Response:
    """Per station, the latest reading of the last `latest_lookback_days` (7) without a
    quality flag (unless `include_flagged=true`), any other `params` of that reading,
    and the current US AQI as AirNow reports it: of the PM2.5 NowCast (US EPA; the last
    12 complete hours, weighted towards the recent ones when concentrations change fast).
    A station with fewer than 2 of the last 3 hours has no NowCast yet: its `aqi` is then
    of the latest reading, and `aqi_basis` says which.

    The regulatory AQI is of the 24-hour mean: see `/v1/aqi`."""
    q.check(settings)
    fmt = negotiate(request, q.format, q.formats)
    now = time.time()
    coverage = request.app.state.rollup_coverage
    covered_until = await coverage.until(influx) if coverage is not None else None
    results = await influx.query(statements(q, datetime.fromtimestamp(int(now), UTC),
                                            timedelta(days=settings.latest_lookback_days), covered_until,
                                            coverage.rp if coverage is not None else None))
    rows = latest_rows(results, q, settings, now, int(nowcast_hours(datetime.fromtimestamp(int(now), UTC))[1]
                                                         .timestamp()))
    columns = (*LEAD, *q.extra_params, *TAIL)
    units = units_for(["pm25", *q.extra_params]) | {"nowcast": UNITS["pm25"]}  # a PM2.5 concentration
    body = envelope(settings, rows, q.echo(), units=units)
    if fmt == "csv":
        return csv_response(columns, units, ([r.get(c) for c in columns] for r in rows), settings, "latest")
    if fmt == "geojson":
        features = [feature(r["station"], r["lat"], r["lon"],
                            {k: v for k, v in r.items() if k not in ("lat", "lon")}) for r in rows]
        return json_response(feature_collection(features, body["meta"]), settings, media_type=GEOJSON_MEDIA)
    return json_response(body, settings)


def hourly_means(results: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """Per station, hour start [s] -> mean PM2.5, from the hourly statements' results (the
    raw means, and the rolled-up ones with their counts: a mean whose count is 0 is stale)."""
    out: dict[str, dict[int, float]] = {}
    for result in results:
        for s in series(result):
            index = {c: i for i, c in enumerate(s["columns"])}
            mean, count = index["pm25_mean"], index.get("pm25_count")
            means = out.setdefault(s["tags"]["station"], {})
            for row in s["values"]:
                if row[mean] is not None and (count is None or row[count]):
                    means[row[0]] = row[mean]
    return out


def latest_rows(results: list[dict[str, Any]], q: LatestQuery, settings: ApiSettings,
                now: float, hours_end: int) -> list[dict[str, Any]]:
    """Rows of the response from the statements' results (pure); ``hours_end``:
    the end of the NowCast's last complete hour [s]."""
    last = catalog.parse_last_seen(results[1])
    hourly = hourly_means(results[4:])
    infos = catalog.assemble(catalog.parse_meta(results[2]), catalog.parse_status(results[3]), last, {})
    values_of = (*q.extra_params, "qc", "sensor", "channel")
    area = q if q.has_area else None  # pydantic attribute access is slow: ask once, not per station
    windows, min_s = settings.online_windows, settings.online_min_s
    rows = []
    for s in series(results[0]):
        station = s["tags"]["station"]
        info = infos.get(station)
        meta = info.meta if info is not None else StationMeta(station)
        lat, lon = meta.published_position()
        if area is not None and not area.contains(lat, lon):
            continue
        values = dict(zip(s["columns"], s["values"][0], strict=True))
        now_cast = nowcast.nowcast(nowcast.hourly_series(hourly.get(station, {}), hours_end - nowcast.HOUR_S))
        index = aqi.us_aqi(now_cast.value if now_cast else values["pm25"])
        last_seen = info.last_seen if info is not None else None
        rows.append({
            "station": station, "name": meta.name or station, "lat": lat, "lon": lon,
            "time": format_time(values["time"]),
            "last_seen": format_time(last_seen) if last_seen is not None else None,
            "status": online_status(last_seen, info.window_s, info.status, info.status_time, now,
                                    windows=windows, min_s=min_s) if info is not None else "unknown",
            "pm25": values["pm25"],
            **{c: values.get(c) for c in values_of},
            "nowcast": now_cast.value if now_cast else None,
            "aqi": index.value if index else None,
            "aqi_basis": ("nowcast" if now_cast else "reading") if index else None,
            "aqi_category": index.category if index else None,
            "aqi_colour": index.colour if index else None,
        })
    if q.near is not None:
        rows.sort(key=lambda r: q.distance_m(r["lat"], r["lon"]) or 0.0)
    return rows
