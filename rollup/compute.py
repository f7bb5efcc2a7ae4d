"""Recompute rollup points from raw readings: InfluxQL in (civicair.influxql), line
protocol out. Owns the mapping of query results to rollup points; must not own when
or what to recompute (rollup.worker, rollup.backfill decide).

Idempotent: a point is identified by measurement, station and the interval's start, so
recomputing an interval rewrites the same point. InfluxDB merges a rewritten point's
fields into the stored ones and has no null: a statistic that vanished (the last clean
reading of an hour got flagged later) cannot be removed, so each parameter's clean
``count`` is written whenever the parameter has any reading in the interval, 0
included, and readers take a mean, min or max only where that count is above 0.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from civicair import influxql
from civicair.influx import Influx, InfluxRejected, series
from civicair.schema import contract, qc, storage

log = logging.getLogger("civicair.rollup")

INTERVAL_S = {"1h": 3600, "1d": 86400}
#: The bits the flag counts cover (every bit of civicair.schema.qc.Flag).
FLAGS: tuple[qc.Flag, ...] = tuple(qc.Flag)

Point = dict[str, int | float]


def statements(stations: Sequence[str], start: datetime, end: datetime, interval: str) -> list[str]:
    """The statements of one recompute: stats over clean and over all readings, readings
    per channel (all, clean), then readings per flag."""
    base = [influxql.stations_in(stations), influxql.time_range(start, end)]
    clean = [*base, influxql.clean_only()]
    return [influxql.rollup_compute(clean, interval), influxql.rollup_compute(base, interval),
            influxql.rollup_readings(base, interval), influxql.rollup_readings(clean, interval),
            influxql.rollup_qc(base)]


def _rows(result: dict[str, Any]) -> Iterable[tuple[dict[str, str], dict[str, Any]]]:
    for s in series(result):
        columns = s["columns"]
        for values in s["values"]:
            yield s.get("tags", {}), dict(zip(columns, values, strict=True))


def points(results: Sequence[dict[str, Any]], interval: str) -> dict[tuple[str, int], Point]:
    """Rollup fields per (station, interval start [s]) from the results of :func:`statements`
    (queried with ``epoch=s``). Pure."""
    out: dict[tuple[str, int], Point] = defaultdict(dict)
    clean_stats, all_stats, readings, clean_readings, flagged = results
    for result, clean in ((all_stats, False), (clean_stats, True)):
        for tags, row in _rows(result):
            point = out[(tags["station"], int(row["time"]))]
            for param in storage.ROLLUP_PARAMS:
                count = row.get(f"{param}_count")
                if not count:
                    continue
                for stat in storage.ROLLUP_STATS:
                    point[storage.rollup_field(param, stat, clean)] = row[f"{param}_{stat}"]
    for point in out.values():  # a clean count of 0 where the parameter has readings
        for param in storage.ROLLUP_PARAMS:
            if storage.rollup_field(param, "count", False) in point:
                point.setdefault(storage.rollup_field(param, "count"), 0)
    for result, kind in ((readings, "readings"), (clean_readings, "clean")):
        for tags, row in _rows(result):
            if tags["channel"] in contract.CHANNELS:
                point = out[(tags["station"], int(row["time"]))]
                point[f"{kind}_{tags['channel']}"] = row["readings"]
                if kind == "readings" and row.get("window"):  # left out where 0 or missing
                    point[f"window_{tags['channel']}"] = row["window"]
    for point in out.values():
        for ch in contract.CHANNELS:
            if f"readings_{ch}" in point:
                point.setdefault(f"clean_{ch}", 0)
    step = INTERVAL_S[interval]
    names = [(int(flag), storage.flag_field(flag.name or str(int(flag)))) for flag in FLAGS]
    for tags, row in _rows(flagged):
        point = out[(tags["station"], int(row["time"]) // step * step)]
        bits = int(row["qc"])
        point[storage.QC_OR] = int(point.get(storage.QC_OR, 0)) | bits
        for bit, name in names:
            if bits & bit:
                point[name] = int(point.get(name, 0)) + 1
    for point in out.values():
        if any(k.startswith("readings_") for k in point):
            point.setdefault(storage.QC_OR, 0)
    return dict(out)


def _value(name: str, value: int | float) -> str:
    if storage.ROLLUP_FIELDS[name].type == "integer":
        return f"{int(value)}i"
    return repr(float(value))


def lines(measurement: str, found: dict[tuple[str, int], Point]) -> bytes:
    """Line protocol (precision s) of rollup points; station ids need no escaping (contract)."""
    out = []
    for (station, t), point in sorted(found.items()):
        if point:
            fields = ",".join(f"{k}={_value(k, v)}" for k, v in sorted(point.items()))
            out.append(f"{measurement},station={station} {fields} {t}\n")
    return "".join(out).encode()


def floor(t: datetime, interval: str) -> datetime:
    step = INTERVAL_S[interval]
    return datetime.fromtimestamp(int(t.timestamp()) // step * step, UTC)


def _results(influx: Influx, stations: Sequence[str], start: datetime, end: datetime,
             interval: str) -> list[dict[str, Any]]:
    """The results of :func:`statements`, in one query. Should InfluxDB refuse it (a mean over
    stored values near 1e308, flagged out of range but stored as sent, overflows to ±Inf,
    which InfluxDB cannot encode), each statement is asked again station by station and a
    station's refused statement is left out (logged): its interval keeps the statistics that
    could be computed, and one station's absurd readings cannot stop every other rollup."""
    texts = statements(stations, start, end, interval)
    try:
        return influx.query(influxql.statements(*texts), epoch="s")
    except InfluxRejected as exc:
        log.warning("rollup of %d station(s) from %s refused (%s); asking station by station",
                    len(stations), start.isoformat(), exc)
    merged: list[dict[str, Any]] = [{"series": []} for _ in texts]
    for station in stations:
        for i, text in enumerate(statements([station], start, end, interval)):
            try:
                (result,) = influx.query(text, epoch="s")
            except InfluxRejected as exc:
                log.warning("rollup statement %d of station %s from %s (%s) left out: %s",
                            i, station, start.isoformat(), interval, exc)
                continue
            merged[i]["series"] += series(result)
    return merged


def recompute(influx: Influx, stations: Sequence[str], start: datetime, end: datetime, interval: str,
              rp: str | None = None) -> int:
    """Recompute every ``interval`` of ``stations`` in [start, end) (aligned outward) and
    write the points. Returns the number of points written."""
    if not stations:
        return 0
    start = floor(start, interval)
    if floor(end, interval) != end:
        end = floor(end, interval) + timedelta(seconds=INTERVAL_S[interval])
    found = points(_results(influx, stations, start, end, interval), interval)
    payload = lines(storage.ROLLUPS[interval], found)
    if payload:
        influx.write(payload, rp=rp)
    return len(found)
