"""``civicair rollup run | backfill | init``: the commands' bodies (the parser is in civicair.cli)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from civicair import influxql
from civicair.influx import Influx, InfluxError, series
from rollup.backfill import backfill
from rollup.settings import RollupSettings


def parse_time(text: str, what: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} must be an ISO 8601 date or date-time, got {text!r}") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def cmd_backfill(start: str, end: str | None) -> int:
    settings = RollupSettings()
    try:
        t0 = parse_time(start, "--from")
        t1 = parse_time(end, "--to") if end else datetime.now(UTC)
        if t0 >= t1:
            raise ValueError("--from must be before --to")
    except ValueError as exc:
        print(f"civicair rollup backfill: {exc}", file=sys.stderr)
        return 2
    with Influx(settings.influx()) as influx:
        try:
            done = backfill(influx, t0, t1, rp=settings.rollup_rp or None,
                            station_batch=settings.rollup_station_batch,
                            progress=lambda line: print(line, flush=True))
        except InfluxError as exc:
            print(f"civicair rollup backfill: {exc}", file=sys.stderr)
            return 1
    print(f"done: {done.days} days with readings, {done.hours} station-hours, {done.station_days} "
          "station-days", flush=True)
    return 0


def retention_statements(settings: RollupSettings, policies: list[list]) -> list[str]:
    """What ``init`` must run on InfluxDB 1.x, given ``SHOW RETENTION POLICIES`` rows
    (name, duration, shardGroupDuration, replicaN, default). Pure."""
    db = settings.influx_db
    out = []
    existing = {row[0]: row for row in policies}
    default = next((row[0] for row in policies if row[4]), "autogen")
    rp = settings.rollup_rp
    if settings.raw_retention != "INF" and (not rp or rp == default):
        raise ValueError("a raw retention needs CIVICAIR_ROLLUP_RP naming another policy (kept forever) for "
                         "the rollups, or they would expire with the raw readings")
    if rp and rp not in existing:
        out.append(influxql.retention_policy(rp, db, "INF", default=False, create=True))
    if rp and rp in existing and _go_seconds(existing[rp][1]) != 0:
        out.append(influxql.retention_policy(rp, db, "INF", default=False, create=False))
    current = existing.get(default, [default, "0s"])[1]
    if _go_seconds(current) != _seconds(settings.raw_retention):
        out.append(influxql.retention_policy(default, db, settings.raw_retention, default=True, create=False))
    return out


def _seconds(duration: str) -> int:
    """``INF`` (0: forever, as InfluxDB shows it) or ``<n>h|d|w`` in seconds."""
    if duration == "INF":
        return 0
    return int(duration[:-1]) * {"h": 3600, "d": 86400, "w": 604800}[duration[-1]]


def _go_seconds(text: str) -> int:
    """A Go duration as SHOW RETENTION POLICIES prints it (``9600h0m0s``) in seconds."""
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        else:
            total += int(number or 0) * {"h": 3600, "m": 60, "s": 1}.get(ch, 0)
            number = ""
    return total


def cmd_init() -> int:
    settings = RollupSettings()
    with Influx(settings.influx()) as influx:
        try:
            influx.create_database()
            (result,) = influx.query(influxql.retention_policies(settings.influx_db))
            rows = [r for s in series(result) for r in s["values"]]
            for stmt in retention_statements(settings, rows):
                print(stmt, flush=True)
                influx.query(stmt, method="POST")
        except (InfluxError, ValueError) as exc:
            print(f"civicair rollup init: {exc}", file=sys.stderr)
            return 1
    rollups = settings.rollup_rp or "the default policy"
    print(f"retention policies are set (raw: {settings.raw_retention}, rollups: {rollups})", flush=True)
    return 0


def cmd_run() -> int:
    from rollup.worker import run

    run(RollupSettings())
    return 0
