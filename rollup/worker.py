"""The rollup worker (``civicair rollup run``): reads the dirty marks the ingest writes,
recomputes those hours and their UTC days from raw, and only then advances its cursor.

Durable state is one point of measurement ``rollup_state`` in InfluxDB (``cursor``,
``covered_until``), written after the rollups it vouches for: a worker killed at any
moment restarts from the last state, re-reads every mark since ``cursor - margin`` and
recomputes (idempotently) whatever it had not finished. Nothing is kept on local disk.

Owns: the cursor, the coverage watermark, the first-start backfill, the metrics'
values. Must not own the statistics (rollup.compute) or the marks' format (the schema).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from civicair import influxql
from civicair.influx import Influx, InfluxError, InfluxRejected, series
from civicair.schema import storage
from rollup import nowcast
from rollup.backfill import backfill, first_reading
from rollup.compute import floor, recompute
from rollup.metrics import MetricsServer, RollupMetrics
from rollup.settings import RollupSettings
from rollup.things import sync as sync_thing_ids

log = logging.getLogger("civicair.rollup")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: Marks this close to the newest one may still be rewritten by a batch of the same second [s].
UNSETTLED_S = 10
#: Between full reads of the margin (rollup_full_read_s), marks are read from this long
#: before the last pass on [s].
RECENT_S = 30
#: More dirty hours than this in one day: recompute the day's hours in one query.
MANY_HOURS = 3
#: A dirty mark: (time it was written [s], station, start of the hour it marks [s]).
Mark = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class State:
    cursor: int  #: marks stamped after ``cursor - margin`` are (re)read [s]
    covered_until: int  #: every hour before this is rolled up [s]


def _utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def read_state(influx: Influx, rp: str | None) -> State | None:
    (result,) = influx.query(influxql.rollup_state(rp), epoch="s")
    found = series(result)
    if not found:
        return None
    row = dict(zip(found[0]["columns"], found[0]["values"][0], strict=True))
    return State(int(row["cursor"]), int(row["covered_until"]))


def state_line(state: State, now: int) -> bytes:
    return (f"{storage.ROLLUP_STATE} cursor={state.cursor}i,covered_until={state.covered_until}i "
            f"{now}\n").encode()


class Worker:
    def __init__(self, settings: RollupSettings, influx: Influx | None = None) -> None:
        self.settings = settings
        self.influx = influx or Influx(settings.influx())
        self.rp = settings.rollup_rp or None
        self.metrics = RollupMetrics()
        self.stop_event = threading.Event()
        self._done: set[Mark] = set()  # marks recomputed since this process started
        # Marks recomputed once but maybe rewritten since (UNSETTLED_S) -> when [s, worker clock].
        self._unsettled: dict[Mark, int] = {}
        self._waiting: set[Mark] = set()  # marks read but postponed by the last pass
        self._recent: int | None = None  # where the next incremental read of marks starts [s]
        self._full_read_at = -1e18
        self._last_ok = time.monotonic()

    def settled_hour(self, now: int) -> int:
        return int(floor(_utc(now - self.settings.rollup_settle_s), "1h").timestamp())

    def initialize(self, now: int) -> State:
        """First start on this database: roll up everything stored so far."""
        first = first_reading(self.influx)
        if first is not None:
            log.info("no rollup state yet: backfilling from %s", first.isoformat())
            backfill(self.influx, first, _utc(now), rp=self.rp,
                     station_batch=self.settings.rollup_station_batch, progress=log.info)
        state = State(now, self.settled_hour(now))
        self.influx.write(state_line(state, now), rp=self.rp)
        return state

    def cycle(self, now: int | None = None) -> int:
        """One pass: recompute every hour and day marked since the cursor; returns station-hours."""
        started = time.perf_counter()
        now = int(time.time()) if now is None else now
        state = read_state(self.influx, self.rp) or self.initialize(now)
        since = state.cursor - self.settings.rollup_margin_s
        # The whole margin is read again every rollup_full_read_s; in between only the marks
        # stamped since shortly before the last pass (those still waiting are kept here).
        read_from = since
        if self._recent is not None and \
                time.monotonic() - self._full_read_at < self.settings.rollup_full_read_s:
            read_from = max(since, self._recent)
        else:
            self._full_read_at = time.monotonic()
        (result,) = self.influx.query(influxql.dirty_marks(_utc(read_from)), epoch="s")
        marks = {(int(t), s["tags"]["station"], int(hour)) for s in series(result) for t, hour in s["values"]}
        marks |= {m for m in self._waiting | self._unsettled.keys() if m[0] > since}
        waiting = sorted(m for m in marks if m not in self._done)
        settled_hour = self.settled_hour(now)
        pending, postponed = self._choose(marks, waiting, now, settled_hour)
        # A mark is one point per (station, hour, second): a batch written later in the same
        # second as one already rolled up rewrites that same point. So the newest marks
        # (within UNSETTLED_S of the newest, for several ingests' clocks) are not taken as
        # done at once: every pass recomputes them again until one runs at least UNSETTLED_S
        # after their first recompute (by the worker's clock), and then they are done.
        newest = max((t for t, _, _ in marks), default=0)
        settled = {m for m in pending
                   if m[0] <= newest - UNSETTLED_S or now - self._unsettled.get(m, now) >= UNSETTLED_S}
        # Lag: of the marks of hours the API may read from the rollups (an open hour waits
        # by design, see _choose), and not yet recomputed at all.
        overdue = [m for m in waiting if m[2] + 3600 <= settled_hour and m not in self._unsettled]
        self._set_lag(now, overdue)
        hours: dict[int, set[str]] = defaultdict(set)
        for _t, station, hour in pending:
            hours[hour].add(station)
        by_day: dict[int, dict[int, set[str]]] = defaultdict(dict)
        for hour, stations in hours.items():
            by_day[hour // 86400 * 86400][hour] = stations
        for day, day_hours in sorted(by_day.items()):
            # A replay dirties many hours of a day: one query for the day's hours then.
            touched = set().union(*day_hours.values())
            ranges = [(_utc(day), _utc(day) + DAY, touched)] if len(day_hours) > MANY_HOURS else \
                [(_utc(h), _utc(h) + HOUR, st) for h, st in sorted(day_hours.items())]
            for start, end, stations in ranges:
                self._recompute(stations, start, end, "1h")
            self.metrics.inc("civicair_rollup_hours_recomputed_total", sum(map(len, day_hours.values())))
            self._recompute(touched, _utc(day), _utc(day) + DAY, "1d")
            self.metrics.inc("civicair_rollup_days_recomputed_total", len(touched))
        # Only now, with every rollup of those marks written, may the cursor move; not past a
        # postponed mark (the next pass reads from the cursor minus the margin anyway). The
        # watermark does not pass an hour whose marks wait for their first recompute either.
        cursor = min([now, *(t + self.settings.rollup_margin_s - 1 for t, _, _ in postponed)])
        covered = min([settled_hour, *(h for m in postponed if m not in self._unsettled
                                       and (h := m[2]) >= state.covered_until)])
        new = State(max(state.cursor, cursor), max(state.covered_until, covered))
        nowcast.update(self.influx, hours, (state.covered_until, new.covered_until), self.rp,
                       self.settings.rollup_station_batch)  # before the state that vouches for them
        self.influx.write(state_line(new, now), rp=self.rp)
        self._done = {m for m in self._done | settled if m[0] > since}
        chosen = set(pending)
        self._unsettled = {m: self._unsettled.get(m, now) for m in waiting
                           if m not in settled and (m in chosen or m in self._unsettled)}
        self._waiting = set(postponed)
        self._recent = now - RECENT_S
        self._set_lag(now, [m for m in overdue if m not in chosen])
        self.metrics.set("civicair_rollup_marks_waiting", len(self._waiting | set(self._unsettled)))
        self.metrics.set("civicair_rollup_covered_until_seconds", new.covered_until)
        self.metrics.inc("civicair_rollup_cycles_total")
        self.metrics.set("civicair_rollup_cycle_seconds", time.perf_counter() - started)
        sync_thing_ids(self.influx, self.rp)  # after the state: a refused write never holds rollups back
        if pending:
            log.info("rolled up %d station-hours of %d days (%d marks)", sum(map(len, hours.values())),
                     len(by_day), len(pending))
        self._last_ok = time.monotonic()
        return sum(map(len, hours.values()))

    def _choose(self, marks: set[Mark], waiting: list[Mark], now: int,
                settled_hour: int) -> tuple[list[Mark], list[Mark]]:
        """The marks to recompute in this pass, and those that wait.

        Debounce: the hours of a station whose marks keep coming (a spool replay, a burst
        of the ingest) wait until the station's marks are quiet (or the hour has waited
        max_delay), so that a burst is recomputed once, when it is over, rather than
        hour by hour while the ingest is still busy writing the station's later hours. An
        open hour (not yet below the coverage watermark: the current hour, which the API
        reads from raw) waits up to open_delay: it is recomputed once right after it
        settles rather than every max_delay while it fills."""
        first: dict[tuple[str, int], int] = {}
        last: dict[str, int] = {}  # the station's newest mark, of any hour
        for t, station, hour in waiting:
            key = (station, hour)
            first[key] = min(first.get(key, t), t)
        for t, station, _ in marks:
            last[station] = max(last.get(station, t), t)
        s = self.settings

        def ready(key: tuple[str, int]) -> bool:
            if key[1] + 3600 > settled_hour:
                return now - first[key] >= s.rollup_open_delay_s
            return now - last[key[0]] >= s.rollup_quiet_s or now - first[key] >= s.rollup_max_delay_s

        ready_keys = {k for k in first if ready(k)}
        pending: list[Mark] = []
        postponed: list[Mark] = []
        for m in waiting:
            (pending if (m[1], m[2]) in ready_keys else postponed).append(m)
        return pending, postponed

    def _set_lag(self, now: int, overdue: list[Mark]) -> None:
        self.metrics.set("civicair_rollup_lag_seconds", max([0, *(now - t for t, _, _ in overdue)]))
        oldest = min((h for _, _, h in overdue), default=0)
        self.metrics.set("civicair_rollup_oldest_dirty_hour_seconds", oldest)

    def _recompute(self, stations: set[str], start: datetime, end: datetime, interval: str) -> None:
        ids, batch = sorted(stations), self.settings.rollup_station_batch
        for i in range(0, len(ids), batch):
            recompute(self.influx, ids[i:i + batch], start, end, interval, self.rp)

    def health(self) -> tuple[bool, dict]:
        quiet = time.monotonic() - self._last_ok
        ok = quiet < max(10 * self.settings.rollup_interval_s, 300)
        return ok, {"status": "ok" if ok else "failing", "seconds_since_last_pass": round(quiet, 1)}

    def run(self) -> None:
        """Passes every ``rollup_interval_s`` until stopped; one log line per change of state
        (failing, and why; succeeding again), not one per pass."""
        failing: str | None = None  # the kind of the current failure
        while not self.stop_event.is_set():
            try:
                self.cycle()
                if failing:
                    log.info("rollup passes succeed again")
                failing = None
            except InfluxError as exc:
                self.metrics.inc("civicair_rollup_failures_total")
                kind, hint = failure(exc, self.settings)
                if kind != failing:
                    log.warning("rollup pass failed (will retry): %s%s", exc, hint)
                failing = kind
            self.stop_event.wait(self.settings.rollup_interval_s)


def failure(exc: InfluxError, settings: RollupSettings) -> tuple[str, str]:
    """The kind of a failed pass (a new kind is logged again) and what to do about it (pure)."""
    if isinstance(exc, InfluxRejected) and exc.missing_policy:
        return "no retention policy", (
            f" (CIVICAIR_ROLLUP_RP={settings.rollup_rp} names a retention policy that database "
            f"{settings.influx_db} does not have: run `civicair rollup init` once to create it)")
    return type(exc).__name__, ""


def policy(settings: RollupSettings) -> str:
    return f"retention policy {settings.rollup_rp}" if settings.rollup_rp else "the default retention policy"


def run(settings: RollupSettings) -> None:
    if settings.rollup_nice:
        # The worker's passes can wait; the ingest beside it on the same cores cannot.
        os.nice(settings.rollup_nice)
    worker = Worker(settings)
    server = None
    if settings.rollup_metrics_port:
        server = MetricsServer(worker.metrics, worker.health, settings.rollup_metrics_host,
                               settings.rollup_metrics_port)
        server.start()
        log.info("metrics on http://%s:%d/metrics", settings.rollup_metrics_host, server.port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop_event.set())
    log.info("rollup worker: every %g s, InfluxDB %s database %s, rollups written to %s",
             settings.rollup_interval_s, settings.influx_url, settings.influx_db, policy(settings))
    try:
        worker.run()
    finally:
        if server is not None:
            server.stop()
        worker.influx.close()
