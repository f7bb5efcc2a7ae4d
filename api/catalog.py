"""Which stations exist and what is known about them, assembled from InfluxDB results.

Shared by the stations, measurements (area filters), latest and aqi routers. The
parsing functions are pure (result dicts in, dataclasses out); :func:`load` runs
the statements in one round trip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from api.filters import AreaFilter
from api.settings import ApiSettings
from api.stationmeta import StationMeta, meta_from_row, online_status
from civicair import influxql
from civicair.influx import AsyncInflux, series
from civicair.schema.timefmt import format_time


@dataclass(slots=True)
class StationInfo:
    id: str
    meta: StationMeta
    first_seen: int | None = None
    last_seen: int | None = None
    window_s: int | None = None
    series: list[tuple[str, str]] = field(default_factory=list)  # (channel, sensor model)
    status: str | None = None  # the bridge's last reported status, if the ingest stores it
    status_time: int | None = None

    def sensors(self) -> list[dict[str, str]]:
        pairs = sorted(set(self.series)) or list(self.meta.sensors)
        return [{"channel": channel, "model": model} for channel, model in pairs]

    def online(self, settings: ApiSettings, now: float) -> str:
        return online_status(self.last_seen, self.window_s, self.status, self.status_time, now,
                             windows=settings.online_windows, min_s=settings.online_min_s)


def parse_meta(result: dict[str, Any]) -> dict[str, StationMeta]:
    return {s["tags"]["station"]: meta_from_row(s["tags"]["station"], s["columns"], s["values"][0])
            for s in series(result) if s.get("values")}


def parse_status(result: dict[str, Any]) -> dict[str, tuple[str | None, int | None]]:
    return {s["tags"]["station"]: (s["values"][0][1], s["values"][0][0])
            for s in series(result) if s.get("values")}


def parse_last_seen(result: dict[str, Any]) -> dict[str, tuple[int, int | None, list[tuple[str, str]]]]:
    """Per station: (last reading [epoch s], its window [s], [(channel, sensor), …]) from
    :func:`civicair.influxql.last_window` (per station or per series)."""
    out: dict[str, tuple[int, int | None, list[tuple[str, str]]]] = {}
    for s in series(result):
        tags, (t, window) = s["tags"], s["values"][0]
        station = tags["station"]
        last, last_window, pairs = out.get(station, (t, window, []))
        if "sensor" in tags:
            pairs.append((tags.get("channel") or "a", tags["sensor"] or "unknown"))
        if t >= last:
            last, last_window = t, window
        out[station] = (last, last_window, pairs)
    return out


def parse_first_seen(result: dict[str, Any]) -> dict[str, int]:
    return {s["tags"]["station"]: s["values"][0][0] for s in series(result) if s.get("values")}


def assemble(meta: dict[str, StationMeta], status: dict, last: dict, first: dict) -> dict[str, StationInfo]:
    infos = {}
    for station in sorted(set(meta) | set(last)):
        info = StationInfo(station, meta.get(station) or StationMeta(station))
        if station in last:
            info.last_seen, info.window_s, info.series = last[station]
        info.first_seen = first.get(station)
        info.status, info.status_time = status.get(station, (None, None))
        infos[station] = info
    return infos


async def load(influx: AsyncInflux, stations: list[str] | None = None, *,
               first: bool = True) -> dict[str, StationInfo]:
    """Every station (or the given ones) with meta, status, first and last reading."""
    parts = [influxql.stations_in(stations)] if stations else []
    stmts = [influxql.station_meta(parts), influxql.station_status(parts), influxql.last_seen(parts)]
    if first:
        stmts.append(influxql.first_seen(parts))
    results = await influx.query(influxql.statements(*stmts))
    return assemble(parse_meta(results[0]), parse_status(results[1]), parse_last_seen(results[2]),
                    parse_first_seen(results[3]) if first else {})


async def load_meta(influx: AsyncInflux) -> dict[str, StationMeta]:
    (result,) = await influx.query(influxql.station_meta())
    return parse_meta(result)


def in_area(metas: dict[str, StationMeta], area: AreaFilter) -> list[str]:
    """Stations whose *published* position lies in the area, nearest first with ``near``."""
    hits = [(area.distance_m(*m.published_position()) or 0.0, sid) for sid, m in metas.items()
            if area.contains(*m.published_position())]
    return [sid for _, sid in sorted(hits)]


def station_json(info: StationInfo, settings: ApiSettings, now: float | None = None,
                 tz: ZoneInfo | None = None, area: AreaFilter | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    lat, lon = info.meta.published_position()
    out = {
        "id": info.id,
        "name": info.meta.name or info.id,
        "lat": lat,
        "lon": lon,
        "location_exact": info.meta.exact_location and lat is not None,
        "sensors": info.sensors(),
        "firmware": info.meta.firmware,
        "software": info.meta.software,
        "licence": info.meta.licence or settings.licence,
        "first_seen": format_time(info.first_seen, tz) if info.first_seen is not None else None,
        "last_seen": format_time(info.last_seen, tz) if info.last_seen is not None else None,
        "status": info.online(settings, now),
        "window_s": info.window_s,
    }
    if area is not None and area.near is not None:
        distance = area.distance_m(lat, lon)
        out["distance_m"] = round(distance, 1) if distance is not None else None
    return out
