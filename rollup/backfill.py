"""Recompute the rollups of a time range from raw, day by day and in batches of
stations, so memory stays bounded whatever the range (one day × one batch of stations
is in flight at a time; InfluxDB does the scanning)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from civicair import influxql
from civicair.influx import Influx, series
from rollup.compute import floor, recompute

DAY = timedelta(days=1)


@dataclass(slots=True)
class Progress:
    days: int = 0
    hours: int = 0  #: station-hours written
    station_days: int = 0  #: station-days written


def stations(influx: Influx) -> list[str]:
    (result,) = influx.query(influxql.station_ids())
    return sorted(row[1] for s in series(result) for row in s["values"])


def first_reading(influx: Influx) -> datetime | None:
    (result,) = influx.query(influxql.first_reading(), epoch="s")
    found = series(result)
    return datetime.fromtimestamp(found[0]["values"][0][0], UTC) if found else None


def backfill(influx: Influx, start: datetime, end: datetime, *, rp: str | None = None,
             station_batch: int = 50, only: Sequence[str] | None = None,
             progress: Callable[[str], None] | None = None) -> Progress:
    """Rollups of every UTC day overlapping [start, end) for every station (or ``only``)."""
    if start >= end:
        raise ValueError("backfill: `from` must be before `to`")
    ids = list(only) if only is not None else stations(influx)
    done = Progress()
    day, last = floor(start, "1d"), floor(end - timedelta(seconds=1), "1d")
    total = (last - day) // DAY + 1
    while day <= last:
        for i in range(0, len(ids), station_batch):
            batch = ids[i:i + station_batch]
            done.hours += recompute(influx, batch, day, day + DAY, "1h", rp)
            done.station_days += recompute(influx, batch, day, day + DAY, "1d", rp)
        done.days += 1
        if progress is not None:
            progress(f"rollup backfill {day:%Y-%m-%d} ({done.days}/{total} days, {len(ids)} stations): "
                     f"{done.hours} station-hours, {done.station_days} station-days")
        day += DAY
    return done
