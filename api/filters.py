"""Query filters: small pydantic classes that validate their own input and emit their own
InfluxQL fragment (the text itself comes from :mod:`civicair.influxql`).

An endpoint's query model inherits the filters it needs (OpenAQ style); FastAPI
reads it as ``Annotated[Model, Query()]``, so the OpenAPI schema lists every
parameter with its pattern and bounds, and unknown parameters are refused
(``extra="forbid"``: a typo such as ``form=`` is a 422, not a silently ignored
filter). :meth:`QueryModel.fragments` collects the fragment of every filter class
in the model's MRO.

Single-parameter rules live in the schema (patterns, enums, bounds); rules between
parameters raise :func:`api.errors.semantic` errors with their own codes.
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from api.errors import ApiError, semantic
from api.settings import ApiSettings
from civicair import influxql
from civicair.schema import contract
from civicair.schema.timefmt import format_time

# -- hard ceilings (settings may only lower them) -----------------------------------------
MAX_ROWS = 10_000
MAX_STATIONS = 100
MAX_RADIUS_M = 100_000
DEFAULT_RADIUS_M = 10_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

# -- patterns ([0-9], not \d: \d also matches other scripts' digits) ---------------------
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
TIMESTAMP_PATTERN = f"^{_DATE}({_TIME})?$"
_STATION = contract.STATION_ID_PATTERN
STATIONS_PATTERN = f"^{_STATION}(,{_STATION}){{0,{MAX_STATIONS - 1}}}$"
_NUM = r"-?[0-9]{1,3}(\.[0-9]{1,12})?"
BBOX_PATTERN = f"^{_NUM},{_NUM},{_NUM},{_NUM}$"
NEAR_PATTERN = f"^{_NUM},{_NUM}$"


def _list_pattern(names, most: int) -> str:
    alternatives = "|".join(sorted(names, key=lambda n: (-len(n), n)))
    return f"^({alternatives})(,({alternatives})){{0,{most - 1}}}$"


PARAMS_PATTERN = _list_pattern(influxql.PARAMS, 30)
AGGREGATES_PATTERN = _list_pattern(influxql.AGGREGATES, 5)

#: IANA zone names, as an enum so the schema lists them once (components/schemas/TimeZone).
# Members come from the zone database at import, so mypy cannot list them (an Enum without members).
TimeZone = enum.Enum(  # type: ignore[misc]
    "TimeZone", {name: name for name in sorted(influxql.time_zones())}, type=str)


def zone(tz: TimeZone | str | None) -> ZoneInfo | None:
    """The ZoneInfo to format output times in; None for UTC ("Z")."""
    name = tz.value if isinstance(tz, enum.Enum) else tz
    return None if name is None or name in influxql.UTC_NAMES else ZoneInfo(name)


def tz_name(tz: TimeZone | str | None) -> str | None:
    name = tz.value if isinstance(tz, enum.Enum) else tz
    return None if name is None or name in influxql.UTC_NAMES else name


def parse_time(text: str, tz: ZoneInfo | None, name: str) -> datetime:
    """ISO 8601 date or date-time; naive values are in ``tz`` (UTC when None)."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            t = datetime(d.year, d.month, d.day, tzinfo=tz or UTC)
        else:
            t = datetime.fromisoformat(text)
            if t.tzinfo is None:
                t = t.replace(tzinfo=tz or UTC)
        # Years 1 and 9999 with an offset fall outside what datetime holds in UTC.
        t = t.astimezone(UTC)
    except (ValueError, OverflowError):
        raise semantic("invalid_time", f"`{name}` is not a valid date or time") from None
    if not EARLIEST <= t <= LATEST:
        raise semantic("invalid_time", f"`{name}` must lie between 2000-01-01 and 2100-01-01")
    return t


def _split(text: str | None) -> list[str]:
    return list(dict.fromkeys(text.split(","))) if text else []


class QueryModel(BaseModel):
    """Base of the filters: unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    def fragments(self, without: tuple[type, ...] = ()) -> list[str]:
        """The WHERE fragments of every filter class this model is made of (except ``without``)."""
        parts = []
        for cls in reversed(type(self).__mro__):
            if cls in without:
                continue
            own = cls.__dict__.get("fragment")
            if own is not None and (part := own(self)):
                parts.append(part)
        return parts

    def check(self, settings: ApiSettings) -> None:
        """Limits that depend on settings; every filter class adds its own."""
        for cls in reversed(type(self).__mro__):
            own = cls.__dict__.get("check_limits")
            if own is not None:
                own(self, settings)

    def echo(self) -> dict:
        """The query as understood, for ``meta.query``."""
        out: dict = {}
        for cls in reversed(type(self).__mro__):
            own = cls.__dict__.get("describe")
            if own is not None:
                out |= own(self)
        return out


# -- time ----------------------------------------------------------------------------------


class TimeRangeFilter(QueryModel):
    """``from``/``to``: ISO 8601 date or date-time; naive values are in ``tz`` (default UTC)."""

    from_: Annotated[str | None, Field(
        alias="from", pattern=TIMESTAMP_PATTERN, examples=["2026-01-01", "2026-01-01T06:00:00+01:00"],
        description="Start, inclusive: ISO 8601 date or date-time. Without an offset it is in `tz` "
                    "(default UTC). Default: `to` minus the endpoint's default span.")] = None
    to: Annotated[str | None, Field(
        pattern=TIMESTAMP_PATTERN, examples=["2026-01-02"],
        description="End, exclusive: ISO 8601 date or date-time (as `from`). Default: now.")] = None
    tz: Annotated[TimeZone | None, Field(
        description="IANA time zone for output times and for dates/times given without an offset; "
                    "with interval=1d, days run from local midnight. Default UTC.",
        examples=["Europe/Amsterdam"])] = None

    default_span: ClassVar[timedelta] = timedelta(days=1)
    _start: datetime = PrivateAttr()
    _end: datetime = PrivateAttr()

    def span_default(self) -> timedelta:
        return self.default_span

    @model_validator(mode="after")
    def _resolve_time_range(self):
        local = zone(self.tz)
        end = parse_time(self.to, local, "to") if self.to else datetime.now(UTC).replace(microsecond=0)
        start = parse_time(self.from_, local, "from") if self.from_ else end - self.span_default()
        if start >= end:
            raise semantic("invalid_range", "`from` must be before `to`")
        self._start, self._end = start, end
        return self

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def end(self) -> datetime:
        return self._end

    @property
    def zone(self) -> ZoneInfo | None:
        return zone(self.tz)

    @property
    def tz_name(self) -> str | None:
        return tz_name(self.tz)

    def check_limits(self, settings: ApiSettings) -> None:
        if self.end - self.start > timedelta(days=settings.max_range_days):
            raise ApiError(422, "range_too_long", f"time range longer than {settings.max_range_days} days; "
                                                  "split it into several requests")

    def fragment(self) -> str | None:  # the type every filter's fragment has (query models combine them)
        return influxql.time_range(self.start, self.end)

    def describe(self) -> dict:
        local = self.zone
        return {"from": format_time(self.start.timestamp(), local),
                "to": format_time(self.end.timestamp(), local), "tz": self.tz_name or "UTC"}


# -- stations and areas ----------------------------------------------------------------------


class StationListFilter(QueryModel):
    stations: Annotated[str | None, Field(
        pattern=STATIONS_PATTERN, examples=["lab-1,lab-2"],
        description=f"Comma-separated station ids (at most {MAX_STATIONS}).")] = None

    _resolved: list[str] | None = PrivateAttr(None)

    @property
    def station_ids(self) -> list[str]:
        return _split(self.stations)

    def resolve(self, stations: list[str]) -> None:
        """Fix the stations the query covers (after an area was matched against metadata)."""
        self._resolved = stations

    @property
    def resolved(self) -> list[str] | None:
        if self._resolved is not None:
            return self._resolved
        return self.station_ids or None

    def check_limits(self, settings: ApiSettings) -> None:
        if len(self.station_ids) > settings.max_stations:
            raise ApiError(422, "too_many_stations", f"at most {settings.max_stations} stations per request")

    def fragment(self) -> str | None:
        stations = self.resolved
        return influxql.stations_in(stations) if stations else None

    def describe(self) -> dict:
        return {"stations": self.station_ids} if self.stations else {}


class AreaFilter(QueryModel):
    """Stations inside a box or near a point, matched on their *published* coordinates
    (rounded unless exact), so a small box cannot locate a volunteer's home."""

    bbox: Annotated[str | None, Field(
        pattern=BBOX_PATTERN, examples=["4.7,52.3,5.1,52.5"],
        description="minLon,minLat,maxLon,maxLat (WGS 84 degrees). minLon > maxLon crosses "
                    "the antimeridian.")] = None
    near: Annotated[str | None, Field(
        pattern=NEAR_PATTERN, examples=["52.37,4.89"], description="lat,lon (WGS 84 degrees)")] = None
    radius: Annotated[int | None, Field(
        ge=1, le=MAX_RADIUS_M, examples=[5000],
        description=f"Radius around `near` in metres (default {DEFAULT_RADIUS_M}).")] = None

    _box: tuple[float, float, float, float] | None = PrivateAttr(None)
    _point: tuple[float, float] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _parse_area(self):
        if self.radius is not None and self.near is None:
            raise semantic("invalid_area", "`radius` needs `near`")
        if self.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = (float(v) for v in self.bbox.split(","))
            if not (max(abs(min_lon), abs(max_lon)) <= 180 and max(abs(min_lat), abs(max_lat)) <= 90):
                raise semantic("invalid_area", "`bbox` longitudes must lie within ±180, latitudes within ±90")
            if min_lat > max_lat:
                raise semantic("invalid_area", "`bbox` minLat must not exceed maxLat")
            self._box = (min_lon, min_lat, max_lon, max_lat)
        if self.near is not None:
            lat, lon = (float(v) for v in self.near.split(","))
            if not (abs(lat) <= 90 and abs(lon) <= 180):
                raise semantic("invalid_area", "`near` must be lat,lon within ±90,±180")
            self._point = (lat, lon)
        return self

    @property
    def has_area(self) -> bool:
        return self._box is not None or self._point is not None

    def distance_m(self, lat: float | None, lon: float | None) -> float | None:
        if self._point is None or lat is None or lon is None:
            return None
        return haversine_m(self._point[0], self._point[1], lat, lon)

    def contains(self, lat: float | None, lon: float | None) -> bool:
        """Whether a published position lies in the area (no position: never)."""
        if not self.has_area:
            return True
        if lat is None or lon is None:
            return False
        if self._box is not None:
            min_lon, min_lat, max_lon, max_lat = self._box
            in_lon = min_lon <= lon <= max_lon if min_lon <= max_lon else (lon >= min_lon or lon <= max_lon)
            if not (in_lon and min_lat <= lat <= max_lat):
                return False
        if self._point is not None:
            distance = self.distance_m(lat, lon)
            assert distance is not None  # _point, lat and lon are all set
            return distance <= (self.radius or DEFAULT_RADIUS_M)
        return True

    def describe(self) -> dict:
        out: dict = {}
        if self.bbox:
            assert self._box is not None  # _parse_area sets it with bbox
            out["bbox"] = list(self._box)
        if self.near:
            assert self._point is not None  # _parse_area sets it with near
            out["near"] = list(self._point)
            out["radius"] = self.radius or DEFAULT_RADIUS_M
        return out


EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance [m] on a sphere of the mean Earth radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# -- quality -------------------------------------------------------------------------------


class QualityFilter(QueryModel):
    include_flagged: Annotated[bool, Field(
        description="Include readings with a quality flag (any `qc` bit except 256, UNCORRECTED). "
                    "Default false.")] = False

    def excludes_flagged(self) -> bool:
        return not self.include_flagged

    def fragment(self) -> str | None:
        return influxql.clean_only() if self.excludes_flagged() else None

    def describe(self) -> dict:
        return {"include_flagged": not self.excludes_flagged()}


# -- series: interval, parameters, aggregates ------------------------------------------------


class SeriesFilter(QualityFilter):
    interval: Annotated[Literal["raw", "1h", "1d"], Field(
        description="`raw`: every reading (cursor-paged); `1h`/`1d`: aggregates per hour/day, "
                    "intervals labelled by their start.")] = "raw"
    params: Annotated[str | None, Field(
        pattern=PARAMS_PATTERN, examples=["pm25,pm10,rh"],
        description="Comma-separated parameters: " + ", ".join(influxql.PARAMS)
                    + ". Default: every field (raw), pm25 (aggregates).")] = None
    aggregates: Annotated[str | None, Field(
        pattern=AGGREGATES_PATTERN, examples=["mean,max"],
        description="For interval 1h/1d: comma-separated mean, min, max, count, median. "
                    "Default mean.")] = None
    # Optional here, unlike QualityFilter's: None means "by interval" (see excludes_flagged).
    # Pydantic lets a subclass redefine a field's type; mypy sees a base-class mismatch.
    include_flagged: Annotated[bool | None, Field(
        description="Include readings with a quality flag (any `qc` bit except 256, UNCORRECTED). "
                    "Default: true for raw readings (each carries its `qc`), false for aggregates.")
    ] = None  # type: ignore[assignment]

    default_spans: ClassVar[dict[str, timedelta]] = {
        "raw": timedelta(days=1), "1h": timedelta(days=7), "1d": timedelta(days=30)}

    @model_validator(mode="after")
    def _check_series(self):
        if self.interval == "raw" and self.aggregates:
            raise semantic("invalid_combination", "`aggregates` needs interval=1h or interval=1d")
        return self

    def span_default(self) -> timedelta:
        return self.default_spans[self.interval]

    @property
    def aggregated(self) -> bool:
        return self.interval != "raw"

    @property
    def param_list(self) -> list[str]:
        params = _split(self.params)
        return params or (["pm25"] if self.aggregated else [])

    @property
    def aggregate_list(self) -> list[str]:
        return _split(self.aggregates) or ["mean"]

    def excludes_flagged(self) -> bool:
        if self.include_flagged is None:
            return self.aggregated
        return not self.include_flagged

    def describe(self) -> dict:
        out = {"interval": self.interval, "params": self.param_list or "all"}
        if self.aggregated:
            out["aggregates"] = self.aggregate_list
        return out


# -- paging ---------------------------------------------------------------------------------


def encode_cursor(epoch_s: int) -> str:
    """The cursor of a page starting at ``epoch_s``: that time, in UTC (transparent on purpose)."""
    return datetime.fromtimestamp(int(epoch_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PagingFilter(QueryModel):
    """Raw readings come in pages ordered by time; ``meta.paging.next_cursor`` continues.

    The cursor is the time where the next page starts: the request with it returns
    readings at or after that time (and still before ``to``).
    """

    limit: Annotated[int | None, Field(
        ge=1, le=MAX_ROWS, description="Rows per page of raw readings (default 1000, at most 10000). "
                                       "A page ends on a whole timestamp, so it may hold fewer rows.")] = None
    cursor: Annotated[str | None, Field(
        pattern=TIMESTAMP_PATTERN, examples=["2026-01-01T06:00:00Z"],
        description="`meta.paging.next_cursor` of the previous page: the time the next page "
                    "starts at.")] = None

    _cursor_time: datetime | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _parse_cursor(self):
        if self.cursor is not None:
            self._cursor_time = parse_time(self.cursor, zone(getattr(self, "tz", None)), "cursor")
        return self

    def page_size(self, settings: ApiSettings) -> int:
        return min(self.limit or settings.default_rows, settings.max_rows)

    def fragment(self) -> str | None:
        return influxql.time_from(self._cursor_time) if self._cursor_time is not None else None

    def describe(self) -> dict:
        return {"cursor": self.cursor} if self.cursor else {}


# -- formats ----------------------------------------------------------------------------------

_FORMAT_HELP = "Response format; also chosen by `Accept: text/csv`"


class CsvFormat(QueryModel):
    format: Annotated[Literal["json", "csv"] | None, Field(
        description=_FORMAT_HELP + ". Default json.")] = None
    formats: ClassVar[tuple[str, ...]] = ("json", "csv")


class GeoFormat(QueryModel):
    format: Annotated[Literal["json", "geojson"] | None, Field(
        description="Response format; `geojson` gives a FeatureCollection (also chosen by "
                    "`Accept: application/geo+json`). Default json.")] = None
    formats: ClassVar[tuple[str, ...]] = ("json", "geojson")


class AllFormats(QueryModel):
    format: Annotated[Literal["json", "csv", "geojson"] | None, Field(
        description=_FORMAT_HELP + " or `Accept: application/geo+json`. Default json.")] = None
    formats: ClassVar[tuple[str, ...]] = ("json", "csv", "geojson")


# -- the endpoints' query models -------------------------------------------------------------


class StationsQuery(AreaFilter, GeoFormat):
    pass


class StationQuery(TimeRangeFilter):
    """Coverage of one station over a range of days (default: the last 30)."""

    default_span: ClassVar[timedelta] = timedelta(days=30)


# SeriesFilter before TimeRangeFilter: its span_default (by interval) must win.
class StationMeasurementsQuery(SeriesFilter, TimeRangeFilter, PagingFilter, CsvFormat):
    pass


class MeasurementsQuery(StationListFilter, AreaFilter, SeriesFilter, TimeRangeFilter, PagingFilter,
                        CsvFormat):
    @model_validator(mode="after")
    def _need_stations(self):
        if not self.stations and not self.bbox and not self.near:
            raise semantic("missing_stations", "give `stations`, `bbox` or `near`")
        return self


class LatestQuery(StationListFilter, AreaFilter, QualityFilter, AllFormats):
    params: Annotated[str | None, Field(
        pattern=PARAMS_PATTERN, examples=["pm10,rh,temp"],
        description="Other parameters of the latest reading to include beside pm25 (each one makes the "
                    "query slower).")] = None

    @property
    def param_list(self) -> list[str]:
        return _split(self.params)

    @property
    def extra_params(self) -> list[str]:
        return [p for p in self.param_list if p not in ("pm25", "qc")]

    def describe(self) -> dict:
        return {"params": ["pm25", *self.extra_params]}


class AqiQuery(StationListFilter, AreaFilter, QualityFilter, TimeRangeFilter, CsvFormat):
    """The 24-hour AQI ends at `to`; the WHO comparison covers [`from`, `to`)."""

    default_span: ClassVar[timedelta] = timedelta(days=365)
