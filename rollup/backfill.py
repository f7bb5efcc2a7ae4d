"""Recompute the rollups (and the NowCast points they feed) of a time range from raw, day
by day and in batches of stations, so memory stays bounded whatever the range (one day ×
one batch of stations is in flight at a time; InfluxDB does the scanning)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from civicair import influxql
from civicair.influx import Influx, series
from rollup import nowcast
from rollup.compute import floor, recompute

DAY = timedelta(days=1)
#: Days per "which days hold readings" query.
SCAN = timedelta(days=64)


@dataclass(slots=True)
class Progress:
    days: int = 0
    hours: int = 0  #: station-hours written
    station_days: int = 0  #: station-days written
    nowcasts: int = 0  #: NowCast points written


def stations(influx: Influx) -> list[str]:
    (result,) = influx.query(influxql.station_ids())
    return sorted(row[1] for s in series(result) for row in s["values"])


def first_reading(influx: Influx) -> datetime | None:
    (result,) = influx.query(influxql.first_reading(), epoch="s")
    found = series(result)
    return datetime.fromtimestamp(found[0]["values"][0][0], UTC) if found else None


def days_with_readings(influx: Influx, start: datetime, end: datetime,
                       only: Sequence[str] | None = None) -> Iterator[tuple[datetime, list[str]]]:
    """(UTC day, stations with readings that day) over [start, end), asked :data:`SCAN` days at a time."""
    t = start
    while t < end:
        stop = min(t + SCAN, end)
        parts = [influxql.stations_in(only) if only else None, influxql.time_range(t, stop)]
        (result,) = influx.query(influxql.readings_per_day(parts), epoch="s")
        days: dict[int, list[str]] = {}
        for s in series(result):
            for ts, _n in s["values"]:
                days.setdefault(int(ts), []).append(s["tags"]["station"])
        for ts in sorted(days):
            yield datetime.fromtimestamp(ts, UTC), sorted(days[ts])
        t = stop


def backfill(influx: Influx, start: datetime, end: datetime, *, rp: str | None = None,
             station_batch: int = 50, only: Sequence[str] | None = None,
             progress: Callable[[str], None] | None = None) -> Progress:
    """Rollups of every UTC day overlapping [start, end) that holds readings, for every
    station with readings that day (or those of ``only``)."""
    if start >= end:
        raise ValueError("backfill: `from` must be before `to`")
    done = Progress()
    first, last = floor(start, "1d"), floor(end - timedelta(seconds=1), "1d") + DAY
    total = (last - first) // DAY
    # NowCasts at the ends of complete hours only (the worker adds each as its hour ends).
    until = int(time.time()) // nowcast.HOUR * nowcast.HOUR
    for day, ids in days_with_readings(influx, first, last, only):
        for i in range(0, len(ids), station_batch):
            batch = ids[i:i + station_batch]
            done.hours += recompute(influx, batch, day, day + DAY, "1h", rp)
            done.station_days += recompute(influx, batch, day, day + DAY, "1d", rp)
            done.nowcasts += nowcast.backfill_day(influx, batch, day, until, rp)
        done.days += 1
        if progress is not None:
            progress(f"rollup backfill {day:%Y-%m-%d} (day {(day - first) // DAY + 1} of {total}, "
                     f"{len(ids)} stations): {done.hours} station-hours, {done.station_days} station-days")
    return done
