#!/usr/bin/env python
"""Rollups: what they save the API, how far they trail the ingest, what the marks cost it.

    python bench/rollup_latency.py                 # a year, 20 stations; ingest 4 × 2 × 30000 (≈ 10 min)
    python bench/rollup_latency.py --only ingest --worker-interval 0   # the marks alone

Three figures from one run, each against a baseline measured in the same run:

ratio_year
    A year of daily means of pm25 for 20 stations (1-minute readings seeded for the
    year, then rolled up by the worker's first-start backfill) through the API
    (``/v1/measurements?interval=1d``, in-process): time with rollups over time from raw
    (``CIVICAIR_ROLLUPS=false``), the median of ``--reps`` paired requests. Goal ≤ 0.1.
lag_s
    Under bench/ingest_throughput.py's single-reading load (100 stations), with the
    worker running every 5 s (``--worker-interval``; the setting's default is 30 s, so
    expect up to 30 s more there): seconds from the moment every reading of the run is
    stored (the ingest's last write) until the hourly rollups hold them all (median over
    the repetitions). The worker waits for the stations' marks to be quiet for 5 s
    (``CIVICAIR_ROLLUP_QUIET_S``) first, so about 5 s plus the pass interval and the
    recompute. Polled only after the ingest's rate is measured.
ingest_ratio
    The ingest's single-reading throughput (bench/ingest_throughput.py's measurement)
    with marks on and the worker running (every 5 s: busier than by default), over
    marks off and no worker; paired per repetition (alternating which goes first),
    median. Goal ≥ 0.95. One worker process serves every "on" run, as in production,
    paused (SIGSTOP) during the "off" runs once nothing waits. The ingest's CPU time per
    reading, off over on, is printed too: the marks' own cost, without the noise of
    other processes.

Progress goes to stdout; the last line is exactly ``ratio_year=X lag_s=Y ingest_ratio=Z``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import ingest_throughput as ingest_bench  # noqa: E402 (beside this file)

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def seed(influx, stations: int, days: int) -> int:
    """1-minute readings of ``stations`` stations for ``days`` days, a day per write."""
    import numpy as np

    rng = np.random.default_rng(1)
    minutes = np.arange(1440)
    total = 0
    for day in range(days):
        t = int(YEAR_START.timestamp()) + day * 86400 + minutes * 60
        out = []
        for s in range(stations):
            atm = rng.gamma(2.0, 6.0, 1440).round(0)
            pm25 = (atm * 0.52 + 1.27).round(2)
            rh = rng.uniform(20, 95, 1440).round(1)
            qc = np.where(rng.random(1440) < 0.03, 4, 0)
            out += [f"pm,station=year-{s},sensor=pms5003,channel=a pm25={a!r},pm25_atm={b!r},rh={c!r},"
                    f"qc={q}i,n=26i,window=60i {ts}"
                    for a, b, c, q, ts in zip(pm25.tolist(), atm.tolist(), rh.tolist(), qc.tolist(),
                                              t.tolist(), strict=True)]
        influx.write(("\n".join(out) + "\n").encode())
        total += len(out)
        if (day + 1) % 30 == 0 or day + 1 == days:
            say(f"seeded {day + 1}/{days} days ({total:,} readings)")
    return total


def year_ratio(args: argparse.Namespace, workdir: Path) -> float:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import ApiSettings
    from civicair.influx import Influx, InfluxSettings
    from civicair.services import InfluxDB
    from rollup.settings import RollupSettings
    from rollup.worker import Worker

    with InfluxDB(workdir / "influxdb-year") as server, \
            Influx(InfluxSettings(url=server.url, database="airquality", timeout_s=600)) as influx:
        influx.create_database()
        started = time.perf_counter()
        seed(influx, args.stations, args.days)
        say(f"seeding took {time.perf_counter() - started:.0f} s; the worker's first start backfills it")
        started = time.perf_counter()
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        settings = RollupSettings(influx_url=server.url, rollup_metrics_port=0, influx_timeout_s=600)
        Worker(settings, influx).cycle()
        say(f"backfill took {time.perf_counter() - started:.0f} s")
        stations = ",".join(f"year-{s}" for s in range(args.stations))
        end = YEAR_START + timedelta(days=args.days)
        url = (f"/v1/measurements?stations={stations}&interval=1d&from={YEAR_START:%Y-%m-%d}"
               f"&to={end:%Y-%m-%d}")
        common = {"influx_url": server.url, "influx_timeout_s": 600, "max_range_days": 366}
        ratios = []
        with TestClient(create_app(ApiSettings(**common))) as on, \
                TestClient(create_app(ApiSettings(**common, rollups=False))) as off:
            a, b = on.get(url), off.get(url)  # warm both (and check they agree)
            assert a.status_code == b.status_code == 200, a.text
            assert a.json()["results"] == b.json()["results"] and a.json()["meta"]["source"] == "rollup_1d"
            rows = len(a.json()["results"])
            for rep in range(args.reps):
                t0 = time.perf_counter()
                off.get(url)
                t1 = time.perf_counter()
                on.get(url)
                t2 = time.perf_counter()
                ratios.append((t2 - t1) / (t1 - t0))
                say(f"rep {rep + 1}: {rows} daily means: raw {t1 - t0:.3f} s, rollups {t2 - t1:.3f} s")
        return statistics.median(ratios)


class _Until(threading.Thread):
    """Polls a count query every 20 ms; ``at`` is when it first reached ``want``."""

    def __init__(self, url: str, query: str, want: int) -> None:
        super().__init__(daemon=True)
        self.url, self.query, self.want, self.at = url, query, want, float("nan")

    def run(self) -> None:
        from civicair.influx import Influx, InfluxError, InfluxSettings, series

        deadline = time.monotonic() + 900
        with Influx(InfluxSettings(url=self.url, database="bench", timeout_s=60)) as influx:
            while time.monotonic() < deadline:
                try:
                    (result,) = influx.query(self.query)
                except InfluxError:  # busy under the load: ask again
                    continue
                found = series(result)
                if found and found[0]["values"][0][1] == self.want:
                    self.at = time.time()
                    return
                time.sleep(0.02)


def _watch_rollups(url: str, start: int, end: int, want: int) -> _Until:
    """A thread noting when the hourly rollups hold all ``want`` readings of [start, end)."""
    rolled = _Until(url, f'SELECT sum("readings_a") FROM "pm_1h" WHERE time >= {start}s AND time < {end}s',
                    want)
    rolled.start()
    return rolled


def _metrics(port: str) -> dict[str, float]:
    import urllib.request

    from rollup.metrics import parse

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return parse(r.read().decode())
    except OSError:
        return {}


class RollupIngestBench(ingest_bench.Bench):
    """bench/ingest_throughput.py's ingest run, with marks off, or on with the worker running.

    The worker is one long-lived process, as in production (``civicair rollup run``): it
    starts before the first "on" run, and is paused (SIGSTOP) during the "off" runs, once
    it has nothing left to do (no mark waiting), so that the "off" runs have no worker and
    each "on" run meets a worker in its steady state, not one catching up on the previous
    run's marks from a cold start."""

    worker_interval: float = 30.0
    started_at = float("nan")  #: when the last run's publisher started [s since the epoch]
    worker: subprocess.Popen | None = None
    worker_port = ""

    def go(self, pub: subprocess.Popen) -> float:
        self.started_at = super().go(pub)
        return self.started_at

    def _start_worker(self) -> None:
        from civicair.services import free_port

        self.worker_port = str(free_port())
        env = {**os.environ, "CIVICAIR_INFLUX_URL": self.influxdb.url, "CIVICAIR_INFLUX_DB": "bench",
               "CIVICAIR_ROLLUP_INTERVAL_S": str(self.worker_interval),
               "CIVICAIR_ROLLUP_METRICS_PORT": self.worker_port, "CIVICAIR_ROLLUP_METRICS_HOST": "127.0.0.1"}
        with open(self.workdir / "rollup.log", "ab") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "rollup", "run"], env=env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        self._wait_worker(lambda m: m.get("civicair_rollup_cycles_total", 0) >= 1, "no rollup pass")

    def _wait_worker(self, done, what: str) -> None:
        deadline = time.monotonic() + 300
        while not done(_metrics(self.worker_port)):
            if time.monotonic() > deadline or self.worker.poll() is not None:
                raise RuntimeError(f"{what}; see {self.workdir}/rollup.log")
            time.sleep(0.1)

    def _pause_worker(self) -> None:
        """Once it has nothing left to do (a pass after the last recompute, nothing waiting)."""
        cycles = _metrics(self.worker_port).get("civicair_rollup_cycles_total", 0)
        self._wait_worker(lambda m: m.get("civicair_rollup_cycles_total", 0) > cycles
                          and m.get("civicair_rollup_marks_waiting", 1) == 0, "the worker never settled")
        os.killpg(self.worker.pid, signal.SIGSTOP)

    def __exit__(self, *exc) -> None:
        if self.worker is not None:
            os.killpg(self.worker.pid, signal.SIGCONT)
            ingest_bench.stop(self.worker)
        super().__exit__(*exc)

    influx_cpu = float("nan")  #: InfluxDB's CPU time per reading during the last run [s]
    worker_cpu = float("nan")  #: the worker's CPU time during the last run [s]

    def _cpu(self, proc: subprocess.Popen | None) -> float:
        return ingest_bench._cpu_seconds(proc.pid) if proc is not None else float("nan")

    def ingest(self, messages: int, per_message: int) -> float:
        """Bench.ingest, noting InfluxDB's and the worker's CPU time during it."""
        influx0, worker0 = self._cpu(self.influxdb.proc), self._cpu(self.worker)
        rate = super().ingest(messages, per_message)
        self.influx_cpu = (self._cpu(self.influxdb.proc) - influx0) / messages
        self.worker_cpu = self._cpu(self.worker) - worker0
        return rate

    def run(self, messages: int, marks: bool) -> tuple[float, float]:
        os.environ["CIVICAIR_ROLLUP_MARKS"] = "true" if marks else "false"
        if not marks or not self.worker_interval:
            return self.ingest(messages, 1), float("nan")
        if self.worker is None:
            self._start_worker()
        else:
            os.killpg(self.worker.pid, signal.SIGCONT)
        try:
            # The run's time range is known before it starts (Bench.ingest takes two run ids).
            t0 = ingest_bench.T0 + (self.run_id + 2) * self.span_s
            rate = self.ingest(messages, 1)
            # Polled only now: a poller running during the ingest would load InfluxDB and the
            # CPU in this arm alone. The rate is messages / (last write - start), so the last
            # write's time is known exactly; the worker waits for quiet marks (rollup_quiet_s)
            # before it recomputes, so the rollups cannot be complete before polling starts.
            stored_at = self.started_at + messages / rate
            rolled = _watch_rollups(self.influxdb.url, t0, t0 + self.span_s, messages)
            rolled.join(300)
            return rate, rolled.at - stored_at
        finally:
            self._pause_worker()


def ingest_figures(args: argparse.Namespace, workdir: Path) -> tuple[float, float]:
    bench_args = argparse.Namespace(single=args.single, batch_messages=0, broker_config="",
                                    receive_maximum=10000, share_group="", batch_size=5000, batch_age=0.2,
                                    py_spy=None)
    ratios, cpu_ratios, influx_ratios, lags = [], [], [], []
    with RollupIngestBench(bench_args, workdir) as bench:
        bench.worker_interval = args.worker_interval
        for rep in range(args.ingest_reps):
            # Alternate which goes first: the database grows and compacts as the runs go on.
            runs = {}
            for marks in ((False, True) if rep % 2 == 0 else (True, False)):
                rate, lag = bench.run(args.single, marks=marks)
                runs[marks] = (rate, lag, bench.last_cpu, bench.influx_cpu, bench.worker_cpu)
            (off, _, cpu_off, db_off, _), (on, lag, cpu_on, db_on, worker) = runs[False], runs[True]
            ratios.append(on / off)
            cpu_ratios.append(cpu_off / cpu_on)
            influx_ratios.append(db_off / db_on)
            lags.append(lag)
            say(f"rep {rep + 1}: ingest 1/message: marks off {off:,.0f}/s ({cpu_off * 1e6:.0f} µs CPU each, "
                f"InfluxDB {db_off * 1e6:.0f} µs), marks on + worker {on:,.0f}/s ({cpu_on * 1e6:.0f} µs CPU "
                f"each, InfluxDB {db_on * 1e6:.0f} µs, worker {worker:.2f} s in all): ratio {on / off:.2f}; "
                f"rollups complete {lag:.1f} s after the last reading was stored")
    say(f"CPU per reading, marks off / on (median): ingest {statistics.median(cpu_ratios):.2f}, "
        f"InfluxDB {statistics.median(influx_ratios):.2f}")
    return statistics.median(ratios), statistics.median(lags)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--days", type=int, default=365, help="days of 1-minute data seeded (365)")
    p.add_argument("--stations", type=int, default=20, help="stations seeded (20)")
    p.add_argument("--reps", type=int, default=5, help="paired API requests (5)")
    p.add_argument("--single", type=int, default=30_000,
                   help="single-reading messages per ingest run (30000, as bench/ingest_throughput.py; "
                        "far more overflow the test broker's queue)")
    p.add_argument("--ingest-reps", type=int, default=4, help="paired ingest runs (4)")
    p.add_argument("--worker-interval", type=float, default=5.0,
                   help="CIVICAIR_ROLLUP_INTERVAL_S of the worker (default 5, so that it works during "
                        "the runs of a few seconds; the setting's default is 30); 0: marks on, no worker")
    p.add_argument("--only", choices=("year", "ingest"), action="append", help="run only these parts")
    args = p.parse_args()
    parts = set(args.only or ("year", "ingest"))
    load = os.getloadavg()
    say(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    ratio_year = lag_s = ingest_ratio = float("nan")
    with tempfile.TemporaryDirectory(prefix="civicair-rollup-bench-") as tmp:
        if "year" in parts:
            ratio_year = year_ratio(args, Path(tmp))
        if "ingest" in parts:
            ingest_ratio, lag_s = ingest_figures(args, Path(tmp))
    load = os.getloadavg()
    say(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"ratio_year={ratio_year:.3f} lag_s={lag_s:.1f} ingest_ratio={ingest_ratio:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
