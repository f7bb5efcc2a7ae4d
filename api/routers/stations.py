"""/v1/stations and /v1/stations/{station}: which stations exist, where, since when, and
how complete their data is."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api import catalog, rollups
from api.deps import InfluxDep, SettingsDep
from api.envelope import envelope
from api.errors import ApiError
from api.filters import StationQuery, StationsQuery
from api.formats import GEOJSON_MEDIA, feature, feature_collection, json_response, negotiate
from api.schemas import StationDetailResponse, StationsResponse, example, responses
from civicair import influxql
from civicair.influx import AsyncInflux, series
from civicair.schema import contract
from civicair.schema.sensors import RATED_LIFE_HOURS

router = APIRouter(prefix="/v1", tags=["stations"])

#: (local date, channel) -> readings
DayCounts = dict[tuple[str, str], int]

StationId = Annotated[
    str, Path(pattern=f"^{contract.STATION_ID_PATTERN}$", description="Station id", examples=["lab-1"])
]

_STATION_EXAMPLE = {
    "id": "lab-1", "name": "Lab 1", "lat": 52.091, "lon": 5.121, "location_exact": False,
    "sensors": [{"channel": "a", "model": "pms5003"}], "firmware": None, "software": "civicair 0.1.0",
    "licence": "CC-BY-4.0", "first_seen": "2026-01-01T00:01:00Z", "last_seen": "2026-03-01T12:00:00Z",
    "status": "online", "window_s": 60,
}
_DETAIL_EXAMPLE = _STATION_EXAMPLE | {"coverage": {"window_s": 60, "percent": 98.6, "days": [
    {"date": "2026-03-01", "channel": "a", "windows": 1420, "clean": 1402, "expected": 1440,
     "percent": 98.6}]}}


@router.get("/stations", summary="Every station", response_model=None,
            responses=responses(StationsResponse, example([_STATION_EXAMPLE]), geojson=True))
async def list_stations(q: Annotated[StationsQuery, Query()], request: Request, influx: InfluxDep,
                        settings: SettingsDep) -> Response:
    """Name, published position, sensors, first and last reading and online status of every
    station. `bbox` or `near` select by published position; `format=geojson` gives a
    FeatureCollection for maps."""
    fmt = negotiate(request, q.format, q.formats)
    infos = await catalog.load(influx)
    now = time.time()
    if q.has_area:
        ids = catalog.in_area({sid: i.meta for sid, i in infos.items()}, q)
    else:
        ids = sorted(infos)
    results = [catalog.station_json(infos[sid], settings, now, area=q) for sid in ids]
    body = envelope(settings, results, q.echo(), units={})
    if fmt == "geojson":
        features = [feature(r["id"], r["lat"], r["lon"],
                            {k: v for k, v in r.items() if k not in ("lat", "lon")}) for r in results]
        return json_response(feature_collection(features, body["meta"]), settings, media_type=GEOJSON_MEDIA)
    return json_response(body, settings)


@router.get("/stations/{station}", summary="One station, with its data coverage", response_model=None,
            responses=responses(StationDetailResponse, example([_DETAIL_EXAMPLE]), not_found=True))
async def station_detail(station: StationId, q: Annotated[StationQuery, Query()], request: Request,
                         influx: InfluxDep, settings: SettingsDep) -> Response:
    """The station's metadata and, per day and channel over [`from`, `to`) (default: the
    last 30 days), the readings present against those expected (one per window, or one
    per duty period for a station that sleeps between windows by design: 86400 / window
    or 86400 / duty period per full day), and how many of them carry no quality flag.
    The counts come from the hourly or daily rollups where they cover the range
    (`meta.source`: the rollup's when any of the counts came from it)."""
    q.check(settings)
    infos = await catalog.load(influx, [station])
    if station not in infos:
        raise ApiError(404, "not_found", f"no station {station!r}")
    info = infos[station]
    count, clean, source = await coverage_counts(influx, request.app.state.rollup_coverage, station, q.start,
                                                 q.end, q.tz_name)
    now = time.time()
    result = catalog.station_json(info, settings, now, q.zone)
    channels = sorted({ch for ch, _ in info.series}) or ["a"]
    until = min(q.end, datetime.fromtimestamp(now, UTC))
    result["health"] = sensor_health(info)
    result["coverage"] = coverage_days(count, clean, q.start, until, q.zone, info.window_s or 60, channels,
                                       info.meta.duty_period_s)
    body = envelope(settings, [result], {"station": station, **q.echo()}, units={}, source=source)
    return json_response(body, settings)


async def coverage_counts(influx: AsyncInflux, coverage: rollups.Coverage | None, station: str,
                          start: datetime, end: datetime, tz: str | None) -> tuple[DayCounts, DayCounts, str]:
    """Readings and clean readings per (local date, channel) over [start, end), and their
    source: the whole intervals the rollups cover from their ``readings_*``/``clean_*``
    counts (UTC days from ``pm_1d``; the hours of ``pm_1h`` summed into local days in a zone
    with whole-hour offsets), the edges from raw. Counts add up, so the parts are summed
    per day: the same numbers as from raw alone."""
    interval = "1d" if tz is None or tz in influxql.UTC_NAMES else "1h"
    plan = await rollups.plan(influx, coverage, (), (), interval, tz, start, end)
    stmts = []
    if plan.rollup:
        rp = coverage.rp if coverage else None
        stmts.append(influxql.rollup_coverage(station, *plan.rollup, rp, interval, tz))
    for a, b in plan.raw:
        stmts += [influxql.coverage(station, a, b, tz, clean=flag) for flag in (False, True)]
    results = await influx.query(influxql.statements(*stmts))
    zone = ZoneInfo(tz) if tz and tz not in influxql.UTC_NAMES else None
    present: Counter[tuple[str, str]] = Counter()
    clean: Counter[tuple[str, str]] = Counter()
    rollup_rows = False
    if plan.rollup:
        for s in series(results[0]):
            rollup_rows = rollup_rows or bool(s["values"])
            for row in s["values"]:
                values = dict(zip(s["columns"], row, strict=True))
                date = datetime.fromtimestamp(values["time"], zone or UTC).date().isoformat()
                for ch in contract.CHANNELS:
                    present[(date, ch)] += values[f"readings_{ch}"] or 0
                    clean[(date, ch)] += values[f"clean_{ch}"] or 0
        results = results[1:]
    for i in range(0, len(results), 2):
        present.update(_day_counts(results[i], zone))
        clean.update(_day_counts(results[i + 1], zone))
    return dict(present), dict(clean), plan.source(interval, rollup_rows)


def sensor_health(info: catalog.StationInfo) -> dict[str, Any]:
    """Duty cycle and, per sensor, laser hours against the model's rated life (pure)."""
    hours = dict(info.meta.laser_hours)
    sensors = []
    for s in info.sensors():
        rated = RATED_LIFE_HOURS.get(s["model"])
        used = hours.get(s["channel"])
        percent = round(100 * used / rated, 1) if used is not None and rated else None
        sensors.append({**s, "laser_hours": used, "rated_life_hours": rated, "life_used_percent": percent})
    return {"duty_period_s": info.meta.duty_period_s or None, "sensors": sensors}


def coverage_days(present: DayCounts, clean: DayCounts, start: datetime,
                  end: datetime, tz: ZoneInfo | None, window_s: int, channels: list[str],
                  duty_period_s: int | None = None) -> dict[str, Any]:
    """Per local day and channel: windows present, clean and expected (pure).

    A day expects one window per ``window_s`` of its part inside [start, end) — one per
    ``duty_period_s`` for a station that sleeps between windows by design — so the
    first and the current day count only their covered hours, and a 23- or 25-hour
    day (daylight saving) its own length.
    """
    step = duty_period_s or window_s
    days: list[dict[str, Any]] = []
    total_present = total_expected = 0
    day = _local_midnight(start, tz)
    while day < end:
        following = _local_midnight(day + timedelta(hours=26), tz)
        expected = max(0, int((min(following, end) - max(day, start)).total_seconds()) // step)
        date = day.astimezone(tz or UTC).date().isoformat()
        for ch in channels:
            have = present.get((date, ch), 0)
            days.append({"date": date, "channel": ch, "windows": have, "clean": clean.get((date, ch), 0),
                         "expected": expected,
                         "percent": round(min(100.0, 100.0 * have / expected), 1) if expected else 0.0})
            total_present += min(have, expected)
            total_expected += expected
        day = following
    percent = round(100.0 * total_present / total_expected, 1) if total_expected else None
    out: dict[str, Any] = {"window_s": window_s, "percent": percent, "days": days}
    if duty_period_s:
        out["duty_period_s"] = duty_period_s
    return out


def _local_midnight(t: datetime, tz: ZoneInfo | None) -> datetime:
    local = t.astimezone(tz or UTC)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _day_counts(result: dict, tz: ZoneInfo | None) -> dict[tuple[str, str], int]:
    """(local date, channel) -> count, from a GROUP BY time(1d), "channel" result (epoch s)."""
    out = {}
    for s in series(result):
        channel = (s.get("tags") or {}).get("channel", "a")
        for t, n in s["values"]:
            out[(datetime.fromtimestamp(t, tz or UTC).date().isoformat(), channel)] = n
    return out
