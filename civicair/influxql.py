"""The only place InfluxQL text is built (beside the dashboards' panel queries, which
are Grafana text checked against the real server).

Identifiers come from fixed lists (fields, aggregate functions, intervals, time
zones) or the station-id pattern, quoted by :func:`civicair.influx.quote_ident`;
literals go through :func:`literal`. Builders are pure functions of validated values,
unit-tested on their text (``tests/civicair/test_influxql.py``). It sits beside the
InfluxDB client, below the packages that query (api, archive, ingest): the API's
filters (:mod:`api.filters`) choose which fragment they need and call the builders here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from zoneinfo import available_timezones

from civicair.influx import quote_ident
from civicair.schema import contract, qc, storage
from civicair.schema.errors import CivicairError

MEASUREMENT = storage.PM
STATION_MEASUREMENT = storage.STATION
TAGS = storage.TAGS
#: Fields a client may ask for, by public name -> InfluxDB field.
FIELDS = {name: name for name in contract.MEASURED_FIELDS} | {
    "pm25": "pm25",
    "pm25_method": "pm25_method",
    "n": "n",
    "seq": "seq",
    "synced": "synced",
}

#: Numeric parameters a client may select or aggregate: public name -> stored field.
#: The short names are the ones analysts expect; the sensor's own field names work too.
PARAMS: dict[str, str] = {
    "pm25": "pm25",  # corrected PM2.5 (see pm25_method)
    "pm25_raw": "pm25_atm",  # the sensor's own atmospheric PM2.5, uncorrected
    "pm1": "pm1_atm",
    "pm4": "pm4_atm",
    "pm10": "pm10_atm",
    "rh": "rh",
    "temp": "temp",
} | {name: name for name in contract.MEASURED_FIELDS}

#: Aggregate functions by public name. MEDIAN and COUNT are exact in InfluxDB 1.x.
AGGREGATES: dict[str, str] = {
    "mean": "MEAN", "min": "MIN", "max": "MAX", "count": "COUNT", "median": "MEDIAN",
}
INTERVALS: dict[str, str] = {"1h": "1h", "1d": "1d"}
#: Aggregates whose result is a new number, not a stored value: the API rounds them.
ROUNDED_AGGREGATES = frozenset({"mean", "median"})
#: Decimals of a mean or median, by unit: one to two digits finer than the sensors
#: resolve, and no float noise (7.414748120000001) served as if it were data.
UNIT_DECIMALS: dict[str, int] = {"µg/m³": 2, "#/0.1L": 1, "#/cm³": 2, "µm": 3, "%": 2, "°C": 2,
                                 "mg/m³": 4}

#: ``qc`` bits that do NOT make a reading "flagged", and the mask of those that do
#: (civicair.schema.qc).
QC_INFORMATIONAL, QC_FLAGGED_MASK = qc.QC_INFORMATIONAL, qc.QC_FLAGGED_MASK

#: Fields of measurement ``station`` (civicair.schema.storage, docs/api.md).
META_FIELDS = storage.META_FIELDS

#: Fields ``/latest`` always returns beside pm25 (each extra field costs InfluxDB a
#: second pass over every series, so more come only on request with ``params``).
LATEST_FIELDS = ("qc",)
#: Station fields ``/latest`` and ``/aqi`` need.
META_POSITION = ("name", "lat", "lon", "exact_location")

UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal"})


class QueryError(CivicairError, ValueError):
    """Input that cannot become a query; the API turns it into a 4xx."""


@cache
def time_zones() -> frozenset[str]:
    """IANA zone names this host knows: the fixed list ``tz`` is checked against."""
    return frozenset(available_timezones())


def ident(name: str, allowed: tuple[str, ...] | dict[str, str] | frozenset[str]) -> str:
    """A double-quoted identifier, only if it is on the fixed list (civicair.influx.quote_ident)."""
    try:
        return quote_ident(name, allowed)
    except ValueError as exc:
        raise QueryError(str(exc)) from None


def literal(value: str) -> str:
    """A single-quoted string literal, escaped for InfluxQL."""
    if not isinstance(value, str) or "\n" in value or "\r" in value or "\x00" in value:
        raise QueryError("string literal must be a single line of text")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def station_literal(station: str) -> str:
    if not contract.is_station_id(station):
        raise QueryError(f"station id must match {contract.STATION_ID_PATTERN}")
    return literal(station)


def time_literal(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return literal(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


# -- WHERE fragments ----------------------------------------------------------------------


def time_range(start: datetime, end: datetime) -> str:
    return f"time >= {time_literal(start)} AND time < {time_literal(end)}"


def time_from(start: datetime) -> str:
    return f"time >= {time_literal(start)}"


def time_after(t: datetime) -> str:
    return f"time > {time_literal(t)}"


def time_at(t: datetime) -> str:
    return f"time = {time_literal(t)}"


def station_eq(station: str) -> str:
    return f'"station" = {station_literal(station)}'


def stations_in(stations: Sequence[str]) -> str:
    """Station tag among ``stations`` (OR of equalities: no regex, so nothing to escape)."""
    if not stations:
        raise QueryError("at least one station")
    if len(stations) == 1:
        return station_eq(stations[0])
    return "(" + " OR ".join(station_eq(s) for s in stations) + ")"


def clean_only() -> str:
    """Readings without a quality flag. A reading without a ``qc`` field does not match."""
    return f'"qc" & {QC_FLAGGED_MASK} = 0'


def where(parts: Iterable[str | None]) -> str:
    """`` WHERE a AND b`` from fragments (empty ones skipped); ``""`` when none."""
    kept = [p for p in parts if p]
    return " WHERE " + " AND ".join(kept) if kept else ""


def tz_clause(tz: str | None) -> str:
    """`` tz('Zone')`` for a zone on the host's list; ``""`` for UTC (InfluxDB's default)."""
    if tz is None or tz in UTC_NAMES:
        return ""
    if tz not in time_zones():
        raise QueryError(f"unknown time zone {tz!r}")
    return f" tz({literal(tz)})"


# -- SELECT lists -----------------------------------------------------------------------


def param_field(param: str) -> str:
    return ident(PARAMS[param] if param in PARAMS else param, frozenset(PARAMS.values()))


def _aliased(field: str, alias: str) -> str:
    return field if field == f'"{alias}"' else f'{field} AS "{alias}"'


def raw_columns(params: Sequence[str] | None) -> str:
    """``*`` (every field and tag), or the chosen parameters plus qc and the tags."""
    if not params:
        return "*"
    cols = [_aliased(param_field(p), p) for p in params]
    cols += ['"qc"'] if "qc" not in params else []
    cols += [f'"{t}"' for t in TAGS]
    return ", ".join(cols)


def decimals(param: str) -> int:
    """Decimals a mean or median of ``param`` is rounded to (see :data:`UNIT_DECIMALS`)."""
    field = PARAMS.get(param, param)
    unit = contract.MEASURED_FIELDS.get(field, "µg/m³" if field == "pm25" else "")
    return UNIT_DECIMALS.get(unit, 3)


def _aggregate(param: str, aggregate: str, rounded: bool) -> str:
    call = f"{AGGREGATES[aggregate]}({param_field(param)})" if aggregate in AGGREGATES \
        else ident(aggregate, AGGREGATES)
    if rounded and aggregate in ROUNDED_AGGREGATES:
        scale = 10 ** decimals(param)
        call = f"ROUND({call} * {scale}) / {scale}"
    return f'{call} AS "{param}_{aggregate}"'


def aggregate_columns(params: Sequence[str], aggregates: Sequence[str], rounded: bool = True) -> str:
    """``ROUND(MEAN("pm25") * 100) / 100 AS "pm25_mean", …`` for every parameter × aggregate.

    ``rounded``: means and medians rounded to :func:`decimals` (in InfluxDB, so the API
    adds no work per value); off where the API computes further with them (AQI)."""
    if not params or not aggregates:
        raise QueryError("at least one parameter and one aggregate")
    return ", ".join(_aggregate(p, a, rounded) for p in params for a in aggregates)


# -- statements -------------------------------------------------------------------------


def select_raw(columns: str, parts: Iterable[str | None], limit: int | None, tz: str | None = None) -> str:
    limit_clause = f" LIMIT {int(limit)}" if limit is not None else ""
    return (f'SELECT {columns} FROM "{MEASUREMENT}"{where(parts)} ORDER BY time ASC'
            f"{limit_clause}{tz_clause(tz)}")


def select_aggregates(params: Sequence[str], aggregates: Sequence[str], parts: Iterable[str | None],
                      interval: str, by_station: bool, tz: str | None = None, rounded: bool = True) -> str:
    group = f"time({INTERVALS[interval]})" if interval in INTERVALS else ident(interval, INTERVALS)
    group += ', "station"' if by_station else ""
    return (f'SELECT {aggregate_columns(params, aggregates, rounded)} FROM "{MEASUREMENT}"{where(parts)} '
            f"GROUP BY {group} fill(none){tz_clause(tz)}")


def raw_measurements(station: str, start: datetime, end: datetime, limit: int) -> str:
    return select_raw("*", [station_eq(station), time_range(start, end)], limit)


def count_rows(parts: Iterable[str | None]) -> str:
    """Readings matching ``parts`` (every reading carries ``n``)."""
    return f'SELECT count("n") AS "rows" FROM "{MEASUREMENT}"{where(parts)}'


def latest(parts: Iterable[str | None], params: Sequence[str] = ()) -> str:
    """Per station, the latest reading with pm25: its qc, tags and any extra ``params``."""
    extra = [_aliased(param_field(p), p) for p in params if p not in ("pm25", *LATEST_FIELDS)]
    columns = ", ".join(['last("pm25") AS "pm25"', *extra, *(f'"{f}"' for f in LATEST_FIELDS), '"sensor"',
                         '"channel"'])
    return f'SELECT {columns} FROM "{MEASUREMENT}"{where(parts)} GROUP BY "station"'


def last_window(parts: Iterable[str | None] = (), per_series: bool = False) -> str:
    """Time of the last reading and its window [s], per station (or per station, sensor and
    channel). One selector and no other field: the cheapest "last seen" InfluxDB 1.x has."""
    group = '"station", "sensor", "channel"' if per_series else '"station"'
    return f'SELECT last("window") AS "window" FROM "{MEASUREMENT}"{where(parts)} GROUP BY {group}'


def last_seen(parts: Iterable[str | None] = ()) -> str:
    """Per series (station, sensor, channel): time of the last reading and its window."""
    return last_window(parts, per_series=True)


def first_seen(parts: Iterable[str | None] = ()) -> str:
    return f'SELECT first("n") AS "n" FROM "{MEASUREMENT}"{where(parts)} GROUP BY "station"'


def station_meta(parts: Iterable[str | None] = (), fields: Sequence[str] = META_FIELDS) -> str:
    """Per station, the latest meta message (the fields at the point of the last ``name``).

    Status points (``status="offline"``) share the measurement but carry no name, so
    they never hide the meta that came before them.
    """
    others = ", ".join(ident(f, META_FIELDS) for f in fields if f != "name")
    return (f'SELECT last("name") AS "name", {others} FROM "{STATION_MEASUREMENT}"{where(parts)} '
            'GROUP BY "station"')


def station_status(parts: Iterable[str | None] = ()) -> str:
    return f'SELECT last("status") AS "status" FROM "{STATION_MEASUREMENT}"{where(parts)} GROUP BY "station"'


def field_keys() -> str:
    return f'SHOW FIELD KEYS FROM "{MEASUREMENT}"'


def station_ids() -> str:
    return f'SHOW TAG VALUES FROM "{MEASUREMENT}" WITH KEY = "station"'


def coverage(station: str, start: datetime, end: datetime, tz: str | None, clean: bool) -> str:
    """Windows present per day and channel (clean ones only with ``clean``)."""
    parts = [station_eq(station), time_range(start, end), clean_only() if clean else None]
    return (f'SELECT count("n") AS "windows" FROM "{MEASUREMENT}"{where(parts)} '
            f'GROUP BY time(1d), "channel" fill(none){tz_clause(tz)}')


def statements(*stmts: str) -> str:
    """Several statements in one request (one round trip; one result each)."""
    return "; ".join(stmts)


# -- rollups (civicair.schema.storage, docs/rollups.md) -----------------------------------

ROLLUP_MEASUREMENTS = storage.ROLLUPS
#: Public parameter -> stored field, for the parameters the rollups hold.
ROLLUP_PARAMS: dict[str, str] = {p: f for p, f in PARAMS.items() if f in storage.ROLLUP_PARAMS}
#: Aggregates a rollup can answer (a median needs every reading).
ROLLUP_AGGREGATES = frozenset({"mean", "min", "max", "count"})
_ROLLUP_FUNCTIONS = {"mean": "MEAN", "min": "MIN", "max": "MAX", "count": "COUNT"}


def measurement(name: str, rp: str | None = None) -> str:
    """``"name"`` or ``"rp"."name"`` (a retention policy; on 2.x a DBRP-mapped bucket)."""
    quoted = ident(name, (MEASUREMENT, STATION_MEASUREMENT, *ROLLUP_MEASUREMENTS.values(),
                          storage.ROLLUP_DIRTY, storage.ROLLUP_STATE, storage.THING_IDS))
    return f"{quote_ident(rp)}.{quoted}" if rp else quoted


def qc_has(bit: int) -> str:
    """Readings carrying ``bit`` of ``qc``."""
    if bit <= 0 or bit & (bit - 1) or bit not in {int(f) for f in qc.Flag}:
        raise QueryError(f"not a qc flag bit: {bit!r}")
    return f'"qc" & {bit} != 0'


def rollup_compute(parts: Iterable[str | None], interval: str) -> str:
    """Per station and interval, every rollup statistic of the raw readings matching ``parts``
    (the clean ones when ``parts`` holds :func:`clean_only`): the text the API's own
    aggregate query uses, without rounding, so the stored mean is the API's mean."""
    group = ident(interval, INTERVALS)
    cols = ", ".join(f'{_ROLLUP_FUNCTIONS[stat]}({ident(field, storage.ROLLUP_PARAMS)}) AS "{field}_{stat}"'
                     for field in storage.ROLLUP_PARAMS for stat in storage.ROLLUP_STATS)
    return (f'SELECT {cols} FROM "{MEASUREMENT}"{where(parts)} '
            f'GROUP BY time({group.strip(chr(34))}), "station" fill(none)')


def rollup_readings(parts: Iterable[str | None], interval: str) -> str:
    """Readings per station, channel and interval (every reading carries ``n``)."""
    group = ident(interval, INTERVALS).strip('"')
    return (f'SELECT count("n") AS "readings" FROM "{MEASUREMENT}"{where(parts)} '
            f'GROUP BY time({group}), "station", "channel" fill(none)')


#: Suffix of the hidden column holding a parameter's clean count in :func:`select_rollup`.
COUNT_SUFFIX = "__n"


def rollup_qc(parts: Iterable[str | None]) -> str:
    """The ``qc`` of every reading carrying any bit, per station in time order: one scan
    from which the rollup's per-flag counts and OR are taken (InfluxQL has no bitwise-OR
    aggregate, and counting each bit would scan ``qc`` once per bit)."""
    any_bit = '"qc" != 0'
    return f'SELECT "qc" FROM "{MEASUREMENT}"{where([*parts, any_bit])} GROUP BY "station"'


def select_rollup(params: Sequence[str], aggregates: Sequence[str], parts: Iterable[str | None],
                  interval: str, by_station: bool, clean: bool, rounded: bool = True,
                  rp: str | None = None, tz: str | None = None) -> str:
    """The API's aggregate query (:func:`select_aggregates`) answered from the rollups: one
    stored point per station and interval, so MEAN/MIN/MAX of it return the stored value
    unchanged and a count is the stored count. Same columns, same rounding, then one
    hidden ``<param>__n`` count per parameter: where it is 0, a clean statistic left
    from an earlier computation is stale and the reader drops it (rollup.compute)."""
    if not params or not aggregates:
        raise QueryError("at least one parameter and one aggregate")
    cols = []
    for param in params:
        field = ROLLUP_PARAMS.get(param)
        if field is None:
            raise QueryError(f"{param!r} is not rolled up")
        for agg in aggregates:
            if agg not in ROLLUP_AGGREGATES:
                raise QueryError(f"{agg!r} cannot be answered from rollups")
            stored = ident(storage.rollup_field(field, agg, clean), frozenset(storage.ROLLUP_FIELDS))
            call = f"SUM({stored})" if agg == "count" else f"{_ROLLUP_FUNCTIONS[agg]}({stored})"
            if rounded and agg in ROUNDED_AGGREGATES:
                scale = 10 ** decimals(param)
                call = f"ROUND({call} * {scale}) / {scale}"
            cols.append(f'{call} AS "{param}_{agg}"')
    cols += [f'SUM("{storage.rollup_field(ROLLUP_PARAMS[p], "count", clean)}") AS "{p}{COUNT_SUFFIX}"'
             for p in params]
    group = f"time({ident(interval, INTERVALS).strip(chr(34))})" + (', "station"' if by_station else "")
    return (f"SELECT {', '.join(cols)} FROM {measurement(ROLLUP_MEASUREMENTS[interval], rp)}{where(parts)} "
            f"GROUP BY {group} fill(none){tz_clause(tz)}")


def rollup_coverage(station: str, start: datetime, end: datetime, rp: str | None = None, interval: str = "1d",
                    tz: str | None = None) -> str:
    """Readings and clean readings per day (in ``tz``) and channel, from the daily rollup
    (UTC days) or the hourly one (local days of a zone with whole-hour offsets): the
    columns of :func:`coverage`, summed, for the part of a range the rollups cover."""
    if interval not in ROLLUP_MEASUREMENTS:
        raise QueryError(f"no rollup for interval {interval!r}")
    cols = ", ".join(f'sum("{kind}_{ch}") AS "{kind}_{ch}"' for kind in ("readings", "clean")
                     for ch in contract.CHANNELS)
    return (f"SELECT {cols} FROM {measurement(ROLLUP_MEASUREMENTS[interval], rp)}"
            f"{where([station_eq(station), time_range(start, end)])} "
            f"GROUP BY time(1d) fill(none){tz_clause(tz)}")


def dirty_marks(since: datetime) -> str:
    """Dirty marks written after ``since`` (the ingest's clock), per station."""
    return (f'SELECT "hour" FROM {measurement(storage.ROLLUP_DIRTY)}{where([time_after(since)])} '
            'GROUP BY "station"')


def rollup_state(rp: str | None = None) -> str:
    return (f'SELECT last("cursor") AS "cursor", last("covered_until") AS "covered_until" '
            f"FROM {measurement(storage.ROLLUP_STATE, rp)}")


def thing_ids(rp: str | None = None) -> str:
    """The SensorThings Thing id table (one point per station, time 0), per station."""
    return f'SELECT last("id") AS "id" FROM {measurement(storage.THING_IDS, rp)} GROUP BY "station"'


def known_stations() -> str:
    """Every station id with readings or station points (one series per measurement): the
    stations that get a Thing id (the API and the rollup worker ask the same question)."""
    return f'SHOW TAG VALUES FROM "{MEASUREMENT}", "{STATION_MEASUREMENT}" WITH KEY = "station"'


def readings_per_day(parts: Iterable[str | None]) -> str:
    """Readings per UTC day and station (where a backfill has work to do)."""
    return (f'SELECT count("n") AS "n" FROM "{MEASUREMENT}"{where(parts)} '
            'GROUP BY time(1d), "station" fill(none)')


def first_reading() -> str:
    """Time of the oldest reading (one ``first`` over the whole measurement)."""
    return f'SELECT first("n") AS "n" FROM "{MEASUREMENT}"'


_DURATION = re.compile(r"(INF|[1-9][0-9]{0,5}[hdw])\Z")


def retention_policy(name: str, database: str, duration: str, default: bool, create: bool) -> str:
    """``CREATE``/``ALTER RETENTION POLICY`` (InfluxDB 1.x). ``duration``: ``INF`` or e.g. ``400d``."""
    if not _DURATION.match(duration):
        raise QueryError(f"retention duration must be INF or a number with h, d or w, got {duration!r}")
    verb = "CREATE" if create else "ALTER"
    replication = " REPLICATION 1" if create else ""
    return (f"{verb} RETENTION POLICY {quote_ident(name)} ON {quote_ident(database)} DURATION {duration}"
            f"{replication}{' DEFAULT' if default else ''}")


def retention_policies(database: str) -> str:
    return f"SHOW RETENTION POLICIES ON {quote_ident(database)}"


# -- the open-data archive (archive/build.py) ---------------------------------------------


def archive_readings(start: datetime, end: datetime) -> str:
    """Every reading in [start, end), one series per station: InfluxDB returns series in
    station order and each in time order, so a day streams out station by station. (Grouped
    by station and channel too, series would come in channel-then-station order: InfluxDB
    sorts series keys by tag name.)"""
    return f'SELECT * FROM "{MEASUREMENT}"{where([time_range(start, end)])} GROUP BY "station"'


def archive_fingerprint(start: datetime, end: datetime) -> str:
    """What changes when readings of [start, end) are added or amended: their count and sums."""
    return (f'SELECT count("n") AS "rows", sum("seq") AS "seq", sum("qc") AS "qc", sum("n") AS "n" '
            f'FROM "{MEASUREMENT}"{where([time_range(start, end)])}')


def archive_day_counts(start: datetime, end: datetime) -> str:
    """Readings per UTC day in [start, end); days without any are left out."""
    return (f'SELECT count("n") AS "rows" FROM "{MEASUREMENT}"{where([time_range(start, end)])} '
            "GROUP BY time(1d) fill(none)")


# -- SensorThings (api/sta) ---------------------------------------------------------------

#: Fields an Observation carries beside its result (api/sta/observations.py).
STA_OBS_EXTRA = ("qc", "n", "window", "pm25_method")


def number_literal(value: float | int) -> str:
    """A finite number as InfluxQL text (``repr`` of a float: no exponent surprises)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError("not a number")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")) or abs(number) > 1e300:
        raise QueryError("number out of range")
    return repr(number)


def field_present(field: str) -> str:
    """Rows where ``field`` has a value (a field compared with itself is false when missing)."""
    name = ident(field, frozenset(PARAMS.values()))
    return f"{name} = {name}"


def series_in(pairs: Sequence[tuple[str, str]]) -> str:
    """(station, channel) tag pairs, as an OR of equalities."""
    if not pairs:
        raise QueryError("at least one series")
    terms = [f"({station_eq(s)} AND \"channel\" = {literal(_channel(c))})" for s, c in pairs]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def _channel(channel: str) -> str:
    if channel not in contract.CHANNELS:
        raise QueryError("unknown channel")
    return channel


def time_compare(op: str, t: datetime) -> str:
    """``time <op> '…'`` with op one of = < <= > >= (InfluxDB 1.x has no != or OR on time)."""
    if op not in ("=", "<", "<=", ">", ">="):
        raise QueryError(f"time comparison {op!r}")
    return f"time {op} {time_literal(t)}"


def sta_observations(field: str, parts: Iterable[str | None], descending: bool, limit: int,
                     offset: int = 0, one_series: bool = False) -> str:
    """One property's Observations in time order (ties are left to the caller: ``station``
    and ``channel`` come back as columns). ``one_series``: ``parts`` name a single station and
    channel, whose tags then come once (``GROUP BY``, which would apply ``LIMIT`` per series)
    rather than on every row (a quarter of a 10,000-row answer)."""
    result = ident(field, frozenset(PARAMS.values()))
    extra = ", ".join(f'"{f}"' for f in STA_OBS_EXTRA)
    order = "DESC" if descending else "ASC"
    offset_clause = f" OFFSET {int(offset)}" if offset else ""
    tags, group = ("", ' GROUP BY "station", "channel"') if one_series else (', "station", "channel"', "")
    return (f'SELECT {result} AS "result", {extra}{tags} FROM "{MEASUREMENT}"'
            f"{where([field_present(field), *parts])}{group} ORDER BY time {order} "
            f"LIMIT {int(limit)}{offset_clause}")


def sta_latest(field: str, parts: Iterable[str | None]) -> str:
    """The latest value of ``field`` per station and channel: one pass for every Datastream."""
    result = ident(field, frozenset(PARAMS.values()))
    extra = ", ".join(f'"{f}"' for f in STA_OBS_EXTRA)
    return (f'SELECT last({result}) AS "result", {extra} FROM "{MEASUREMENT}"{where(parts)} '
            'GROUP BY "station", "channel"')


def sta_count(field: str, parts: Iterable[str | None]) -> str:
    result = ident(field, frozenset(PARAMS.values()))
    return f'SELECT count({result}) AS "count" FROM "{MEASUREMENT}"{where(parts)}'


def sta_count_series(field: str, parts: Iterable[str | None]) -> str:
    """The number of values of ``field`` per station and channel (each Datastream's count)."""
    result = ident(field, frozenset(PARAMS.values()))
    return (f'SELECT count({result}) AS "count" FROM "{MEASUREMENT}"{where(parts)} '
            'GROUP BY "station", "channel"')


def station_positions(parts: Iterable[str | None] = ()) -> str:
    """Every stored position of every station, oldest first (status points have none)."""
    return (f'SELECT "lat", "lon", "exact_location" FROM "{STATION_MEASUREMENT}"'
            f'{where(parts)} GROUP BY "station"')


def first_seen_series(parts: Iterable[str | None] = ()) -> str:
    """Time of the first reading per station and channel."""
    return f'SELECT first("n") AS "n" FROM "{MEASUREMENT}"{where(parts)} GROUP BY "station", "channel"'


#: $filter operators of SensorThings (OData) -> InfluxQL.
STA_COMPARE = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
STA_ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}


def sta_field(field: str) -> str:
    return ident(field, frozenset(PARAMS.values()))


def sta_compare(op: str, left: str, right: str) -> str:
    """``left <op> right``; operands come from :func:`sta_field`, :func:`number_literal` or
    this group of builders, never from a client."""
    if op not in STA_COMPARE:
        raise QueryError(f"comparison {op!r}")
    return f"{left} {STA_COMPARE[op]} {right}"


def sta_arith(op: str, left: str, right: str) -> str:
    if op not in STA_ARITH:
        raise QueryError(f"operator {op!r}")
    return f"({left} {STA_ARITH[op]} {right})"


def sta_bool(op: str, parts: Sequence[str]) -> str:
    if op not in ("and", "or") or not parts:
        raise QueryError(f"boolean {op!r}")
    return "(" + f" {op.upper()} ".join(parts) + ")"


def field_seen(field: str, parts: Iterable[str | None] = ()) -> str:
    """Per station and channel, the last value of ``field``: which series carry it at all."""
    name = ident(field, frozenset(PARAMS.values()))
    return f'SELECT last({name}) AS "value" FROM "{MEASUREMENT}"{where(parts)} GROUP BY "station", "channel"'


def newest_windows(measurement: str, fields: Sequence[str], depth: int, lookback_s: int) -> str:
    """The newest ``depth`` points of every series (``TAGS``) seen in the last ``lookback_s``:
    what the ingest reads back on start to judge the next windows (ingest/restore.py).
    Built from identifiers it checks and integers only."""
    if depth < 1 or lookback_s < 1:
        raise ValueError("depth and lookback_s must be positive")
    columns = ", ".join(quote_ident(f) for f in fields)
    tags = ", ".join(quote_ident(t) for t in TAGS)
    return (f"SELECT {columns} FROM {quote_ident(measurement)} WHERE time > now() - {int(lookback_s)}s "
            f"GROUP BY {tags} ORDER BY time DESC LIMIT {int(depth)}")


# -- NowCast (rollup/nowcast.py, api/routers/latest.py; docs/rollups.md) -------------------


def rollup_hourly_pm25(parts: Iterable[str | None], clean: bool = True, rp: str | None = None) -> str:
    """Per station, the stored hourly PM2.5 means of :data:`storage.PM_1H` and their counts,
    one row per hour, as ``pm25_mean`` and ``pm25_count``: the clean statistics, or those
    over every reading (``_all``) without ``clean``. A plain selection, not an aggregate:
    the float read back is the stored one (InfluxDB's MEAN of the hour's readings). A
    reader takes a mean only where its count is above 0 (rollup.compute)."""
    mean = ident(storage.rollup_field("pm25", "mean", clean), frozenset(storage.ROLLUP_FIELDS))
    count = ident(storage.rollup_field("pm25", "count", clean), frozenset(storage.ROLLUP_FIELDS))
    return (f'SELECT {mean} AS "pm25_mean", {count} AS "pm25_count" FROM {measurement(storage.PM_1H, rp)}'
            f'{where(parts)} GROUP BY "station"')


def nowcast_measurement(rp: str | None = None) -> str:
    """``"pm_nowcast"`` or ``"rp"."pm_nowcast"`` (the NowCast points live with the rollups)."""
    quoted = ident(storage.PM_NOWCAST, (storage.PM_NOWCAST,))
    return f"{quote_ident(rp)}.{quoted}" if rp else quoted


def nowcast_points(parts: Iterable[str | None], rp: str | None = None) -> str:
    """The stored NowCast points (every field of :data:`storage.NOWCAST_FIELDS`), per station."""
    cols = ", ".join(ident(f, storage.NOWCAST_FIELDS) for f in storage.NOWCAST_FIELDS)
    return f'SELECT {cols} FROM {nowcast_measurement(rp)}{where(parts)} GROUP BY "station"'
