"""Readings through the real ingest, then the worker: hourly and daily rollups equal the
raw aggregates for every station and interval; a late reading changes exactly its hour
and its day; a worker SIGKILLed mid-pass loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from civicair.influx import Influx, InfluxSettings
from civicair.services import free_port
from rollup.settings import RollupSettings
from rollup.worker import UNSETTLED_S, Worker, read_state
from tests import procs
from tests.conftest import DATABASE, wait_until
from tests.rollup.conftest import (
    HOUR,
    T0,
    assert_rollups_equal_raw,
    message,
    metrics_of,
    rollup_points,
    stored_total,
)

STATIONS = ["roll-1", "roll-2"]


def _worker(influxdb) -> Worker:
    return Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0,
                                 rollup_quiet_s=0))


def _ingest(publisher, influx: Influx, messages: list[tuple[str, bytes]]) -> None:
    before = stored_total(influx)
    publisher.publish_all(messages)
    publisher.settle()
    wait_until(lambda: stored_total(influx) >= before + len(messages), timeout=60, message="readings stored")


def test_rollups_equal_raw_and_a_late_reading_changes_exactly_its_hour_and_day(influx, influxdb, spawn_ingest,
                                                                                publisher):
    worker = _worker(influxdb)
    worker.cycle()  # first start on an empty database: the state, nothing to backfill
    spawn_ingest()
    # Four days, a reading every 20 minutes per station (the ingest flags some: spikes, …).
    _ingest(publisher, influx, [message(s, i, T0 + 1200 * i) for i in range(4 * 72) for s in STATIONS])
    assert worker.cycle() == len(STATIONS) * 4 * 24  # every station-hour, from the marks
    assert assert_rollups_equal_raw(influx) == len(STATIONS) * (4 * 24 + 4)

    hours, days = rollup_points(influx, "pm_1h"), rollup_points(influx, "pm_1d")
    late = T0 + 5 * HOUR + 7 * 60  # replayed from a spool three days after its time
    _ingest(publisher, influx, [message("roll-2", 10_000, late)])
    # Its mark may share the second of marks already rolled up (the test is quick): the
    # worker redoes such recent marks, so count what changed, not what was recomputed.
    assert worker.cycle() >= 1
    new_hours, new_days = rollup_points(influx, "pm_1h"), rollup_points(influx, "pm_1d")
    changed_hours = {k for k in hours if hours[k] != new_hours[k]}
    changed_days = {k for k in days if days[k] != new_days[k]}
    assert changed_hours == {("roll-2", T0 + 5 * HOUR)} and set(new_hours) == set(hours)
    assert changed_days == {("roll-2", T0)} and set(new_days) == set(days)
    assert new_hours[("roll-2", T0 + 5 * HOUR)]["readings_a"] == 4
    assert_rollups_equal_raw(influx)


@pytest.mark.slow
def test_worker_killed_mid_pass_loses_nothing(influx, influxdb, spawn_ingest, publisher, tmp_path: Path):
    worker = _worker(influxdb)
    worker.cycle()
    initial = read_state(influx, None)
    spawn_ingest()
    # 240 dirty hours of one station, three a day (each its own query): a pass long enough
    # to be killed in the middle of.
    _ingest(publisher, influx, [message("roll-1", i, T0 + 8 * HOUR * i + 60) for i in range(240)])

    port = free_port()
    env = {"CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE,
           "CIVICAIR_ROLLUP_INTERVAL_S": "0.2", "CIVICAIR_ROLLUP_METRICS_PORT": str(port),
           "CIVICAIR_ROLLUP_METRICS_HOST": "127.0.0.1"}
    first = procs.spawn(["rollup", "run"], env, tmp_path / "rollup-1.log")
    try:
        at_kill = wait_until(lambda: (m := metrics_of(port)).get("civicair_rollup_hours_recomputed_total", 0) >= 20
                             and m, timeout=60, interval=0.02, message="a pass under way")
        procs.stop(first, signal.SIGKILL)
    finally:
        procs.stop(first)
    # Killed in the middle of the pass that recomputes them (the passes before it only
    # waited for the marks to be quiet):
    assert 20 <= at_kill["civicair_rollup_hours_recomputed_total"] < 240
    assert len(rollup_points(influx, "pm_1h")) < 240

    second = procs.spawn(["rollup", "run"], env, tmp_path / "rollup-2.log")
    try:
        wait_until(lambda: metrics_of(port).get("civicair_rollup_hours_recomputed_total", 0) >= 240, timeout=120,
                   message="the restarted worker's pass over every dirty hour")
        wait_until(lambda: len(rollup_points(influx, "pm_1h")) == 240, timeout=30, message="every hour")
    finally:
        assert procs.stop(second) == 0
    assert read_state(influx, None).cursor > initial.cursor
    assert len(rollup_points(influx, "pm_1h")) == 240
    assert assert_rollups_equal_raw(influx) == 240 + 80


def test_rollup_command_refuses_bad_input(influxdb) -> None:
    env = {**os.environ, "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rollup", *args], env=env, capture_output=True, text=True,
                              timeout=60)

    missing = run("backfill")
    assert missing.returncode == 2 and "give --from" in missing.stderr
    bad = run("backfill", "--from", "yesterday")
    assert bad.returncode == 2 and "--from must be an ISO 8601 date" in bad.stderr
    backwards = run("backfill", "--from", "2025-01-02", "--to", "2025-01-01")
    assert backwards.returncode == 2 and "--from must be before --to" in backwards.stderr
    with Influx(InfluxSettings(url=influxdb.url, database=DATABASE)) as influx:
        influx.write(b"pm,station=cli-1,sensor=pms5003,channel=a pm25=4.0,qc=0i,n=20i 1735779600\n")  # 2 Jan
    days = run("backfill", "--from", "2025-01-01", "--to", "2025-01-03")
    assert days.returncode == 0 and "rollup backfill 2025-01-02 (day 2 of 2, 1 stations)" in days.stdout, days.stderr
    assert "done: 1 days with readings, 1 station-hours, 1 station-days" in days.stdout
    # Options and settings that do not apply or do not validate: a clear error, no traceback.
    stray = run("run", "--from", "2025-01-01")
    assert stray.returncode == 2 and "--from/--to are for backfill only" in stray.stderr
    env["CIVICAIR_RAW_RETENTION"] = "1y"
    for action in ("init", "run", "backfill"):
        invalid = run(action, *(["--from", "2025-01-01"] if action == "backfill" else []))
        assert invalid.returncode == 2 and "Traceback" not in invalid.stderr, invalid.stderr
        assert "CIVICAIR_RAW_RETENTION: " in invalid.stderr and "'1y'" in invalid.stderr



def test_a_batch_in_the_same_second_as_one_already_rolled_up_is_not_missed(influx: Influx, influxdb) -> None:
    worker = _worker(influxdb)
    worker.cycle()
    now = int(time.time())
    hour = T0 + 3 * HOUR
    mark = f"rollup_dirty,station=same-1,lag={(now // HOUR * HOUR - hour) // HOUR} hour={hour}i {now}\n"
    reading = "pm,station=same-1,sensor=pms5003,channel=a pm25={v},qc=0i,n=20i {t}\n"
    influx.write((reading.format(v=4.0, t=hour + 60) + mark).encode())
    worker.cycle(now)
    # A second batch, same second, same station and hour: its mark is the very same point.
    influx.write((reading.format(v=8.0, t=hour + 120) + mark).encode())
    assert worker.cycle(now + 1) == 1  # redone
    assert rollup_points(influx, "pm_1h")[("same-1", hour)]["pm25_count"] == 2
    assert worker.metrics.values["civicair_rollup_marks_waiting"] == 1
    # … until a pass UNSETTLED_S after its first recompute, then never again: with no newer
    # mark, later passes do not recompute it (they did, every pass, for the whole margin).
    assert worker.cycle(now + UNSETTLED_S) == 1
    assert worker.cycle(now + 2 * UNSETTLED_S) == 0 and worker.cycle(now + 100) == 0
    assert worker.metrics.values["civicair_rollup_marks_waiting"] == 0


def test_an_hour_still_being_written_waits_until_its_marks_are_quiet(influx: Influx, influxdb) -> None:
    worker = Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0,
                                   rollup_quiet_s=5, rollup_max_delay_s=60))
    worker.cycle()
    now = int(time.time())
    hour = T0 + 5 * HOUR
    lag = (now // HOUR * HOUR - hour) // HOUR
    influx.write((f"pm,station=busy-1,sensor=pms5003,channel=a pm25=4.0,qc=0i,n=20i {hour + 60}\n"
                  f"rollup_dirty,station=busy-1,lag={lag} hour={hour}i {now}\n").encode())
    assert worker.cycle(now + 1) == 0  # marks 1 s old: postponed
    assert worker.metrics.values["civicair_rollup_lag_seconds"] == 1
    assert worker.cycle(now + 6) == 1  # quiet for 5 s: done
    assert rollup_points(influx, "pm_1h")[("busy-1", hour)]["pm25_count"] == 1


def test_a_mark_visible_long_after_its_stamp_is_found_by_the_next_full_read(influx: Influx, influxdb) -> None:
    settings = {"influx_url": influxdb.url, "influx_db": DATABASE, "rollup_metrics_port": 0, "rollup_quiet_s": 0}
    worker = Worker(RollupSettings(**settings, rollup_full_read_s=3600))
    worker.cycle()
    now = int(time.time())
    hour = T0 + 7 * HOUR
    lag = (now // HOUR * HOUR - hour) // HOUR
    # A batch stamped 200 s ago lands only now (an ingest retrying a slow InfluxDB).
    late = (f"pm,station=slow-1,sensor=pms5003,channel=a pm25=4.0,qc=0i,n=20i {hour + 60}\n"
            f"rollup_dirty,station=slow-1,lag={lag} hour={hour}i {now - 200}\n").encode()
    worker.cycle(now)
    influx.write(late)
    assert worker.cycle(now + 5) == 0  # incremental read: from 30 s before the last pass
    assert Worker(RollupSettings(**settings, rollup_full_read_s=0)).cycle(now + 10) == 1  # a full read
    assert rollup_points(influx, "pm_1h")[("slow-1", hour)]["pm25_count"] == 1


def test_the_open_hour_is_rolled_up_once_it_settles_and_is_covered_only_then(influx: Influx, influxdb) -> None:
    settings = RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0,
                              rollup_quiet_s=5, rollup_max_delay_s=60, rollup_open_delay_s=1800,
                              rollup_settle_s=120)
    worker = Worker(settings)
    hour = (int(time.time()) // HOUR - 2) * HOUR  # the clock below is set to this hour's end
    worker.cycle(hour)
    reading = "pm,station=open-1,sensor=pms5003,channel=a pm25={v},qc=0i,n=20i {t}\n"
    mark = "rollup_dirty,station=open-1,lag=0 hour={h}i {t}\n"
    # Readings of the hour as it fills: one a minute, each with its mark.
    for minute in range(60):
        t = hour + 60 * minute + 30
        influx.write((reading.format(v=float(minute % 7), t=t) + mark.format(h=hour, t=t)).encode())
        if minute in (5, 12, 40, 50):
            # Open (the API reads it raw), never quiet: not recomputed every max_delay (60 s),
            # but once open_delay (1800 s) after its first waiting mark, for readers of pm_1h.
            assert worker.cycle(t) == (minute == 40)
            assert worker.metrics.values["civicair_rollup_lag_seconds"] == 0  # waiting by design
            assert worker.metrics.values["civicair_rollup_marks_waiting"] > 0
            assert read_state(influx, None).covered_until <= hour
    assert worker.cycle(hour + HOUR + 60) == 0  # ended, not settled yet
    assert read_state(influx, None).covered_until <= hour
    assert worker.cycle(hour + HOUR + 120) == 1  # settled and quiet: recomputed, then covered
    assert read_state(influx, None).covered_until == hour + HOUR
    assert rollup_points(influx, "pm_1h")[("open-1", hour)]["pm25_count"] == 60
    assert worker.metrics.values["civicair_rollup_hours_recomputed_total"] == 2
    # Its newest mark (nothing newer came) is redone by a pass UNSETTLED_S later; then nothing waits.
    assert worker.metrics.values["civicair_rollup_marks_waiting"] == 1
    assert worker.cycle(hour + HOUR + 130) == 1 and worker.cycle(hour + HOUR + 200) == 0
    assert worker.metrics.values["civicair_rollup_marks_waiting"] == 0


def test_coverage_waits_for_a_settled_hour_whose_marks_are_not_quiet(influx: Influx, influxdb) -> None:
    worker = Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0,
                                   rollup_quiet_s=5, rollup_settle_s=120))
    hour = (int(time.time()) // HOUR - 2) * HOUR
    worker.cycle(hour)
    t = hour + HOUR + 118  # a reading of the hour arrives just before it settles
    influx.write((f"pm,station=open-2,sensor=pms5003,channel=a pm25=3.0,qc=0i,n=20i {hour + 3599}\n"
                  f"rollup_dirty,station=open-2,lag=1 hour={hour}i {t}\n").encode())
    assert worker.cycle(hour + HOUR + 120) == 0  # settled but 2 s quiet: waits …
    assert read_state(influx, None).covered_until == hour  # … and so does the watermark
    assert worker.metrics.values["civicair_rollup_lag_seconds"] == 2
    assert worker.cycle(hour + HOUR + 125) == 1
    assert read_state(influx, None).covered_until == hour + HOUR


def test_the_worker_process_runs_niced_and_shows_its_lag_on_metrics(influxdb, tmp_path: Path) -> None:
    port = free_port()
    env = {"CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE, "CIVICAIR_ROLLUP_NICE": "7",
           "CIVICAIR_ROLLUP_METRICS_PORT": str(port), "CIVICAIR_ROLLUP_METRICS_HOST": "127.0.0.1"}
    worker = procs.spawn(["rollup", "run"], env, tmp_path / "rollup.log")
    try:
        wait_until(lambda: metrics_of(port).get("civicair_rollup_cycles_total", 0) >= 1, timeout=60,
                   message="a pass")
        stat = Path(f"/proc/{worker.pid}/stat").read_text().rpartition(")")[2].split()
        assert int(stat[16]) - os.getpriority(os.PRIO_PROCESS, 0) == 7  # field 19: nice
        shown = metrics_of(port)
        assert {"civicair_rollup_lag_seconds", "civicair_rollup_oldest_dirty_hour_seconds",
                "civicair_rollup_hours_recomputed_total", "civicair_rollup_marks_waiting"} <= set(shown)
    finally:
        assert procs.stop(worker) == 0


def test_a_station_still_sending_keeps_its_finished_hours_waiting(influx: Influx, influxdb) -> None:
    worker = Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0,
                                   rollup_quiet_s=5, rollup_max_delay_s=60))
    worker.cycle()
    now = int(time.time())
    lag = (now // HOUR * HOUR - T0) // HOUR
    line = ("pm,station=burst-1,sensor=pms5003,channel=a pm25=4.0,qc=0i,n=20i {t}\n"
            "rollup_dirty,station=burst-1,lag={lag} hour={h}i {w}\n")
    influx.write(line.format(t=T0 + 60, lag=lag, h=T0, w=now).encode())
    # A burst (a spool replay) goes on with the next hour: the first one waits for it too.
    influx.write(line.format(t=T0 + HOUR + 60, lag=lag - 1, h=T0 + HOUR, w=now + 4).encode())
    assert worker.cycle(now + 6) == 0
    assert worker.cycle(now + 9) == 2  # both hours, once the station is quiet


def test_one_stations_absurd_readings_do_not_stop_the_rollups(influx: Influx, influxdb) -> None:
    """Two readings of pm10_atm near 1e308 in one hour (flagged out of range, stored as sent,
    issue 12): the mean over every reading overflows to +Inf, which InfluxDB cannot encode.
    The pass still completes; the other station's hour is rolled up in full, and the odd
    station's keeps what could be computed (its clean statistics)."""
    worker = _worker(influxdb)
    worker.cycle()
    now = int(time.time())
    hour = T0 + 7 * HOUR
    lag = (now // HOUR * HOUR - hour) // HOUR
    line = "pm,station={s},sensor=sds011,channel=a pm25_atm={a},pm10_atm={b},pm25={c},qc={q}i,n=60i {t}\n"
    influx.write((line.format(s="odd-9", a=5.0, b=1.7e308, c=5.0, q=1, t=hour + 60)
                  + line.format(s="odd-9", a=6.0, b=1.6e308, c=6.0, q=1, t=hour + 120)
                  + line.format(s="odd-9", a=7.0, b=9.0, c=7.0, q=0, t=hour + 180)
                  + line.format(s="fine-9", a=4.0, b=8.0, c=4.0, q=0, t=hour + 60)
                  + "".join(f"rollup_dirty,station={s},lag={lag} hour={hour}i {now}\n"
                            for s in ("odd-9", "fine-9"))).encode())
    assert worker.cycle(now + UNSETTLED_S) == 2
    points = rollup_points(influx, "pm_1h")
    fine, odd = points[("fine-9", hour)], points[("odd-9", hour)]
    assert fine["pm10_atm_mean"] == 8.0 and fine["pm10_atm_mean_all"] == 8.0
    assert odd["pm10_atm_mean"] == 9.0 and odd["pm25_mean"] == 7.0 and odd["readings_a"] == 3
    assert "pm10_atm_mean_all" not in odd
