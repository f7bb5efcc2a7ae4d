"""The only place InfluxQL text is built.

Identifiers come from fixed lists or the station-id pattern; literals go through
:func:`literal`. Query builders are pure functions, unit-tested on their text.
"""

from __future__ import annotations

from datetime import UTC, datetime

from firmware_bridge import contract

MEASUREMENT = "pm"
TAGS = ("station", "sensor", "channel")
#: Fields a client may ask for, by public name -> InfluxDB field.
FIELDS = {name: name for name in contract.MEASURED_FIELDS} | {
    "pm25": "pm25",
    "pm25_method": "pm25_method",
    "n": "n",
    "seq": "seq",
    "synced": "synced",
}


class QueryError(ValueError):
    """Input that cannot become a query; the API turns it into a 4xx."""


def ident(name: str, allowed: tuple[str, ...] | dict[str, str] | frozenset[str]) -> str:
    """A double-quoted identifier, only if it is on the fixed list."""
    if name not in allowed:
        raise QueryError(f"unknown name {name!r}")
    return '"' + name + '"'


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


def time_range(start: datetime, end: datetime) -> str:
    return f"time >= {time_literal(start)} AND time < {time_literal(end)}"


def raw_measurements(station: str, start: datetime, end: datetime, limit: int) -> str:
    return (
        f'SELECT * FROM "{MEASUREMENT}" WHERE "station" = {station_literal(station)} '
        f"AND {time_range(start, end)} ORDER BY time ASC LIMIT {int(limit)}"
    )


def station_last_seen() -> str:
    return f'SELECT last("n") AS "n" FROM "{MEASUREMENT}" GROUP BY "station"'


def station_first_seen() -> str:
    return f'SELECT first("n") AS "n" FROM "{MEASUREMENT}" GROUP BY "station"'


def station_sensors() -> str:
    return f'SHOW TAG VALUES FROM "{MEASUREMENT}" WITH KEY IN ("sensor", "channel") GROUP BY "station"'
