"""NowCast points (docs/rollups.md, issue 12): the US EPA PM2.5 NowCast per station and
clock hour, written to :data:`civicair.schema.storage.PM_NOWCAST` for the dashboards
(InfluxQL cannot compute it). Computed from the hourly clean means of ``pm_1h`` (the
floats /v1/latest uses) by :func:`civicair.schema.nowcast.nowcast`.

A NowCast "at" ``end`` (the end of its last complete hour, the point's time) reads the 12
hours before ``end``; so hour ``h`` feeds the NowCasts at ``h + 1 h`` … ``h + 12 h``, and
when the worker recomputes hour ``h`` of a station those are written again (the same
point, idempotent), never beyond the last complete hour. As the clock passes an hour,
every station with hourly means in the 12 hours before it gets its NowCast there, marks or
not (a station that stopped reporting keeps a NowCast for two more hours, as EPA's rule says).

Owns which NowCasts to recompute and the reading of ``pm_1h`` for them; must not own the
algorithm (civicair.schema.nowcast), the point's format (civicair.schema.storage) or when
the worker runs (rollup.worker). One read (a statement per range of ends) and one write
per batch of stations.

Limit: a NowCast that EPA's completeness rule no longer allows (its recent hours lost every
clean reading to a flag found later) cannot be removed (line protocol has no delete); the
stored point stays as it was. Rare: it needs every clean reading of two of three hours flagged late.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from civicair import influxql
from civicair.influx import Influx, series
from civicair.schema import nowcast, storage
from civicair.schema.nowcast import NowCast

HOUR = nowcast.HOUR_S
#: The hours a NowCast reads [s].
WINDOW = nowcast.HOURS * HOUR
#: Ends per statement when every station is read (a worker back after a long stop): a day.
ALL_STATIONS_ENDS = 24


@dataclass(frozen=True, slots=True)
class Span:
    """NowCasts to (re)compute: at every whole hour ``first_end`` … ``last_end`` (inclusive,
    [s]) of ``stations``, or of every station with hourly means then (``None``)."""

    stations: tuple[str, ...] | None
    first_end: int
    last_end: int


def _utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _hour(t: int) -> int:
    return t // HOUR * HOUR


def ends_fed_by(hours: Iterable[int], until: int) -> list[tuple[int, int]]:
    """The NowCast ends ``hours`` (hour starts [s]) feed, as merged inclusive ranges
    ``(first_end, last_end)``, none after ``until`` (the end of the last complete hour)."""
    out: list[tuple[int, int]] = []
    for h in sorted({_hour(h) for h in hours}):
        first, last = h + HOUR, min(h + WINDOW, until)
        if first > last:
            continue
        if out and first <= out[-1][1] + HOUR:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def spans(dirty: Mapping[str, Iterable[int]], until: int) -> list[Span]:
    """The spans of NowCasts the dirty hours (station -> hour starts [s]) feed; stations with
    the same ranges share one span (a live network: all of them, the hour that just ended)."""
    by_range: dict[tuple[int, int], list[str]] = defaultdict(list)
    for station, hours in dirty.items():
        for found in ends_fed_by(hours, until):
            by_range[found].append(station)
    return [Span(tuple(sorted(ids)), a, b) for (a, b), ids in sorted(by_range.items())]


def statement(span: Span, rp: str | None = None) -> str:
    """The hourly means a span's NowCasts read: [first_end - 12 h, last_end)."""
    parts = [influxql.stations_in(span.stations)] if span.stations is not None else []
    parts.append(influxql.time_range(_utc(span.first_end - WINDOW), _utc(span.last_end)))
    return influxql.rollup_hourly_pm25(parts, clean=True, rp=rp)


def hourly_means(result: dict[str, Any]) -> dict[str, dict[int, float]]:
    """Per station, hour start [s] -> mean, from a :func:`influxql.rollup_hourly_pm25` result
    (``epoch=s``): only hours whose count is above 0 (a stale mean is never used)."""
    out: dict[str, dict[int, float]] = {}
    for s in series(result):
        index = {c: i for i, c in enumerate(s["columns"])}
        means = out.setdefault(s["tags"]["station"], {})
        for row in s["values"]:
            mean, count = row[index["pm25_mean"]], row[index["pm25_count"]]
            if mean is not None and count:
                means[int(row[0])] = mean
    return out


def points(spans_: Sequence[Span], results: Sequence[dict[str, Any]]) -> dict[tuple[str, int], NowCast]:
    """The NowCasts of ``spans_`` (station, end [s]) -> NowCast from their statements'
    results, in order; none where EPA's completeness rule gives none. Pure."""
    out: dict[tuple[str, int], NowCast] = {}
    for span, result in zip(spans_, results, strict=True):
        for station, means in hourly_means(result).items():
            if span.stations is not None and station not in span.stations:
                continue
            for end in range(span.first_end, span.last_end + 1, HOUR):
                found = nowcast.nowcast(nowcast.hourly_series(means, end - HOUR))
                if found is not None:
                    out[(station, end)] = found
    return out


def lines(found: Mapping[tuple[str, int], NowCast]) -> bytes:
    return b"".join(storage.nowcast_line(station, end, found[station, end]) for station, end in sorted(found))


def write(influx: Influx, spans_: Sequence[Span], rp: str | None = None) -> int:
    """Compute the NowCasts of ``spans_`` in one read and write them in one ``/write``;
    returns the points written."""
    if not spans_:
        return 0
    results = influx.query(influxql.statements(*(statement(s, rp) for s in spans_)), epoch="s")
    found = points(spans_, results)
    if found:
        influx.write(lines(found), rp=rp)
    return len(found)


def _every_station(first_end: int, last_end: int) -> list[Span]:
    return [Span(None, a, min(a + (ALL_STATIONS_ENDS - 1) * HOUR, last_end))
            for a in range(first_end, last_end + 1, ALL_STATIONS_ENDS * HOUR)]


def update(influx: Influx, dirty: Mapping[int, Iterable[str]], covered: tuple[int, int],
           rp: str | None = None, station_batch: int = 50) -> int:
    """The worker's pass: the NowCasts fed by the hours it recomputed (``dirty``: hour start
    -> stations), up to the new coverage watermark, then, for every station, those at the
    hours the watermark passed (``covered``: its old and new value [s]). Returns the points
    written."""
    old, new = covered
    per_station: dict[str, set[int]] = defaultdict(set)
    for hour, stations in dirty.items():
        for station in stations:
            per_station[station].add(hour)
    ids, written = sorted(per_station), 0
    for i in range(0, len(ids), station_batch):
        written += write(influx, spans({s: per_station[s] for s in ids[i:i + station_batch]}, new), rp)
    if new > old:
        for span in _every_station(_hour(old) + HOUR, _hour(new)):
            written += write(influx, [span], rp)
    return written


def backfill_day(influx: Influx, stations: Sequence[str], day: datetime, until: int,
                 rp: str | None = None) -> int:
    """The NowCasts a UTC day's hourly means feed (to 11 h into the next day), of
    ``stations`` (one batch), none after ``until`` (the end of the last complete hour)."""
    start = int(day.timestamp())
    return write(influx, spans({s: range(start, start + 86400, HOUR) for s in stations}, until), rp)
