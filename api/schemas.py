"""Response shapes, for the OpenAPI document only.

Routes build their bodies directly (orjson, no per-row validation: the cost would
rival the database's on a year of hourly means); these models describe them, and
``tests/api/test_schemathesis.py`` checks real responses against the description.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = float | int | str | bool | None


class ErrorItem(BaseModel):
    loc: list[str]
    msg: str
    type: str


class Error(BaseModel):
    detail: str = Field(description="What was wrong, in words.")
    code: str = Field(description="Stable error code (see docs/api.md).")
    errors: list[ErrorItem] | None = None


class Paging(BaseModel):
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    next: str | None = Field(description="The next page's path and query; null on the last page.")


class Meta(BaseModel):
    model_config = ConfigDict(extra="allow")
    licence: str
    licence_url: str
    attribution: str
    units: dict[str, str]
    query: dict[str, Any]
    found: int
    paging: Paging | None = None
    source: Literal["rollup_1h", "rollup_1d", "raw"] | None = Field(
        None, description="Aggregates and station coverage: answered from the hourly or daily rollups "
                          "(the edges of the range from raw), or from raw readings alone (the values are "
                          "the same; docs/rollups.md).")


class Sensor(BaseModel):
    channel: str
    model: str


class Station(BaseModel):
    id: str
    name: str | None
    lat: float | None = Field(description="WGS 84; rounded to 3 decimals unless `location_exact`")
    lon: float | None
    location_exact: bool
    sensors: list[Sensor]
    firmware: str | None
    software: str | None
    licence: str
    first_seen: str | None
    last_seen: str | None
    status: Literal["online", "offline", "unknown"]
    window_s: int | None
    distance_m: float | None = Field(None, description="Only with `near`.")


class StationsResponse(BaseModel):
    meta: Meta
    results: list[Station]


class CoverageDay(BaseModel):
    date: str
    channel: str
    windows: int
    clean: int
    expected: int
    percent: float


class Coverage(BaseModel):
    window_s: int
    duty_period_s: int | None = Field(None, description="A duty-cycled station measures one window per "
                                                        "duty period: it expects 86400 / duty period a day")
    percent: float | None
    days: list[CoverageDay]


class SensorHealth(BaseModel):
    channel: str
    model: str
    laser_hours: float | None = Field(description="hours the sensor's laser and fan have run, as the "
                                                  "bridge last reported (it re-publishes hourly)")
    rated_life_hours: float | None = Field(
        description="the model's rated life [h] (civicair/schema/sensors.py)")
    life_used_percent: float | None


class StationHealth(BaseModel):
    duty_period_s: int | None = Field(description="one window every this many seconds; null: always on")
    sensors: list[SensorHealth]


class StationDetail(Station):
    health: StationHealth
    coverage: Coverage


class StationDetailResponse(BaseModel):
    meta: Meta
    results: list[StationDetail]


class Measurement(BaseModel):
    """One reading (raw) or one interval (aggregates); the value columns depend on `params`."""

    model_config = ConfigDict(extra="allow")
    time: str
    station: str | None = None


class MeasurementsResponse(BaseModel):
    meta: Meta
    results: list[dict[str, Scalar]]


class Latest(BaseModel):
    """One station's latest reading; `params` adds its other parameters (numbers or null)."""

    model_config = ConfigDict(extra="allow")
    station: str
    name: str | None
    lat: float | None
    lon: float | None
    time: str
    last_seen: str | None
    status: Literal["online", "offline", "unknown"]
    pm25: float | None = Field(description="PM2.5 of the latest reading (one window) [µg/m³]")
    qc: int | None
    sensor: str | None
    channel: str | None
    nowcast: float | None = Field(
        description="US EPA NowCast of PM2.5 from the station's last 12 complete hours [µg/m³]; "
                    "null until 2 of the last 3 hours have data")
    aqi: int | None = Field(description="US AQI of `nowcast` (as AirNow reports it), or of `pm25` "
                                        "where there is no NowCast yet: see `aqi_basis`")
    aqi_basis: Literal["nowcast", "reading"] | None
    aqi_category: str | None
    aqi_colour: str | None


class LatestResponse(BaseModel):
    meta: Meta
    results: list[Latest]


class AqiRow(BaseModel):
    station: str
    name: str | None
    lat: float | None
    lon: float | None
    aqi: int | None = Field(description="US AQI of the 24-hour mean; null beyond the index or without data")
    aqi_category: str | None
    aqi_colour: str | None
    pm25_24h: float | None = Field(description="mean of the hourly means of the 24 hours before `to` [µg/m³]")
    hours_24h: int = Field(description="hours with data in those 24 (EPA asks for at least 18)")
    aqi_valid: bool = Field(description="at least 18 of the 24 hours have data")
    who_days: int = Field(description="days with data in [from, to)")
    who_valid_days: int = Field(description="days with at least 75 % of their readings")
    who_days_above_24h: int = Field(description="valid days whose mean exceeds 15 µg/m³")
    who_mean: float | None = Field(description="mean of the valid daily means [µg/m³]")
    who_mean_above_annual: bool | None = Field(description="who_mean exceeds 5 µg/m³")


class AqiResponse(BaseModel):
    meta: Meta
    results: list[AqiRow]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    influxdb: Literal["up", "down"]


class GeoPoint(BaseModel):
    type: Literal["Point"]
    coordinates: list[float]


class Feature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: GeoPoint | None
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[Feature]
    meta: Meta


# -- OpenAPI ``responses=`` building blocks -------------------------------------------------

META_EXAMPLE = {"licence": "CC-BY-4.0", "licence_url": "https://creativecommons.org/licenses/by/4.0/",
                "attribution": "civicair contributors and volunteer station hosts",
                "units": {"pm25": "µg/m³"}, "query": {}, "found": 1}


def example(results: list, **meta) -> dict:
    """A response example: the envelope around ``results``."""
    return {"meta": META_EXAMPLE | {"found": len(results)} | meta, "results": results}


_ERROR = {"model": Error}
_HEADERS = {
    "ETag": {"description": "Hash of the body (weak validator); send it back as If-None-Match.",
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "public, max-age=60 by default", "schema": {"type": "string"}},
}


def responses(model: type[BaseModel], example: dict | None = None, *, csv: bool = False,
              geojson: bool = False, not_found: bool = False) -> dict[int | str, dict]:
    content: dict[str, dict] = {"application/json": {"example": example} if example else {}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"},
                               "example": "time,pm25_mean (µg/m³)\r\n2026-01-01T00:00:00Z,7.4\r\n"}
    if geojson:
        content["application/geo+json"] = {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}
    out: dict[int | str, dict] = {
        200: {"model": model, "content": content, "headers": _HEADERS},
        304: {"description": "Not modified (the ETag sent in If-None-Match still matches)."},
        400: {**_ERROR, "description": "The database refused the query."},
        422: {**_ERROR, "description": "Invalid parameters; `code` says which rule."},
        429: {**_ERROR, "description": "Rate limit exceeded; see Retry-After and X-RateLimit-*."},
        503: {**_ERROR, "description": "The time-series database is unavailable."},
    }
    if not_found:
        out[404] = {**_ERROR, "description": "No such station."}
    return out
