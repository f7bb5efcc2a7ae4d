"""API latency against the same InfluxQL sent straight to InfluxDB (issue 5).

Starts its own InfluxDB (civicair.services.InfluxDB) in a temp dir, seeds one station
with a year of 1-minute readings and 1000 stations with a day of them (5000-line
batches), starts the API with uvicorn in a subprocess, then measures:

- ``ratio_year``: hourly means of that station's year through the API, divided by the
  same InfluxQL statement sent to InfluxDB (median of ``--runs`` runs each; goal <= 1.25);
- ``ratio_latest``: ``/v1/latest`` over 1000+ stations against its four statements
  sent to InfluxDB in one request (goal <= 1.5);
- p50/p99 of a mixed load from 50 concurrent clients, and the errors (goal: none).

Both sides of a ratio use the same HTTP client settings (keep-alive, gzip accepted).
The last line is exactly ``ratio_year=X ratio_latest=Y p99_ms=Z errors=N``.

    python bench/api_latency.py [--runs 7] [--requests 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.filters import LatestQuery  # noqa: E402
from api.routers.latest import statements as latest_statements  # noqa: E402
from civicair import influxql  # noqa: E402
from civicair.influx import Influx, InfluxSettings  # noqa: E402
from civicair.schema.storage import meta_to_line  # noqa: E402
from civicair.services import InfluxDB, free_port  # noqa: E402

DATABASE = "airquality"
YEAR_STATION = "year-0001"
STATIONS = 1000
BATCH = 5000
CLIENTS = 50


def reading(station: str, ts: int, i: int) -> str:
    """One ``pm`` line as the ingest writes it (corrected pm25, qc, counters)."""
    atm = 4.0 + (i * 7919 % 400) / 10.0
    qc = 4 if i % 997 == 0 else 0  # a few flagged spikes
    return (f"pm,station={station},sensor=pms5003,channel=a pm1_atm={atm * 0.7:.1f},pm25_atm={atm:.1f},"
            f"pm10_atm={atm * 1.3:.1f},rh={40 + i % 50}.0,temp={10 + i % 15}.5,pm25={atm * 0.52 + 5.7:.2f},"
            f'pm25_method="epa_barkjohn_2021",qc={qc}i,n=25i,seq={i}i,boot=1i,window=60i,synced=true {ts}')


def lines(end: int):
    year = end - 365 * 86400
    for i, ts in enumerate(range(year, end, 60)):
        yield reading(YEAR_STATION, ts, i)
    day = end - 86400
    for s in range(STATIONS):
        station = f"s-{s:04d}"
        for i, ts in enumerate(range(day + (s % 60), end, 60)):
            yield reading(station, ts, i + s)


def seed(db: Influx, end: int) -> int:
    total = 365 * 1440 + STATIONS * 1440
    written, started, batch = 0, time.perf_counter(), []
    for line in lines(end):
        batch.append(line)
        if len(batch) == BATCH:
            db.write(("\n".join(batch) + "\n").encode())
            written += len(batch)
            batch = []
            if written % 200_000 == 0:
                rate = written / (time.perf_counter() - started)
                print(f"seeding {written:>9,}/{total:,} points ({rate:,.0f}/s)", flush=True)
    if batch:
        db.write(("\n".join(batch) + "\n").encode())
        written += len(batch)
    metas = [meta_to_line(f"s-{s:04d}", {"name": f"Station {s}", "lat": 52.0 + s / 1000,
                                         "lon": 5.0 + s / 2000, "sensors": {"a": "pms5003"}}, end - 3600)
             for s in range(STATIONS)]
    metas.append(meta_to_line(YEAR_STATION, {"name": "A year", "lat": 52.1, "lon": 5.1}, end - 3600))
    db.write(b"".join(metas))
    took = time.perf_counter() - started
    print(f"seeded {written:,} points and {len(metas)} stations' meta in {took:.1f} s", flush=True)
    return written


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def start_api(influx_url: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """The API under uvicorn (one worker, as `civicair api` runs it) in its own process group."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env={**os.environ, "CIVICAIR_INFLUX_URL": influx_url, "CIVICAIR_INFLUX_DB": DATABASE, **env},
        cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/v1/health")
    return proc, base


def stop_api(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def timed(client: httpx.Client, url: str, params: dict) -> float:
    t = time.perf_counter()
    r = client.get(url, params=params)
    r.raise_for_status()
    r.read()
    return time.perf_counter() - t


def ratio(client: httpx.Client, api: tuple[str, dict], direct: tuple[str, dict],
          runs: int) -> tuple[float, float, float]:
    """(median API s, median direct s, ratio), alternating so drift hits both alike."""
    for _ in range(2):  # warm caches and connections
        timed(client, *api)
        timed(client, *direct)
    api_s, direct_s = [], []
    for _ in range(runs):
        api_s.append(timed(client, *api))
        direct_s.append(timed(client, *direct))
    a, d = statistics.median(api_s), statistics.median(direct_s)
    return a, d, a / d


async def load(base: str, requests: int, end: datetime) -> tuple[list[tuple[str, float]], int]:
    """50 clients, each sending its share of a dashboard-like mix; latencies [s] and errors."""
    day_ago = (end - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hour_ago = (end - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rng = random.Random(5)

    def request() -> tuple[str, str, dict]:
        station = f"s-{rng.randrange(STATIONS):04d}"
        pick = rng.random()
        if pick < 0.4:
            return ("hourly means, 1 day", f"/v1/stations/{station}/measurements",
                    {"from": day_ago, "interval": "1h"})
        if pick < 0.7:
            return "latest", "/v1/latest", {}
        if pick < 0.9:
            return "raw, last hour", f"/v1/stations/{station}/measurements", {"from": hour_ago}
        return "stations", "/v1/stations", {}

    plan = [request() for _ in range(requests)]
    latencies: list[tuple[str, float]] = []
    errors = 0

    async def worker(client: httpx.AsyncClient, share: list[tuple[str, str, dict]]) -> None:
        nonlocal errors
        for kind, url, params in share:
            t = time.perf_counter()
            try:
                r = await client.get(url, params=params)
                await r.aread()
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((kind, time.perf_counter() - t))

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        await asyncio.gather(*(worker(client, plan[i::CLIENTS]) for i in range(CLIENTS)))
    return latencies, errors


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def conditions() -> str:
    load1, load5, _ = os.getloadavg()
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()} cpus ({cpu}), load {load1:.2f}/{load5:.2f}, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per ratio (median)")
    parser.add_argument("--requests", type=int, default=1000, help="requests in the concurrent load")
    parser.add_argument("--keep", help="state directory to keep (default: a temp dir, removed)")
    args = parser.parse_args()

    state = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="civicair-bench-"))
    print(f"conditions at start: {conditions()}", flush=True)
    server = InfluxDB(state / "influxdb")
    server.start()
    api_proc = None
    try:
        with Influx(InfluxSettings(url=server.url, database=DATABASE, timeout_s=120)) as db:
            db.create_database()
            end = int(time.time()) // 60 * 60
            seed(db, end)

        # Ratios measure the API's own cost: its response cache off, so every request queries.
        api_proc, base = start_api(server.url, {"CIVICAIR_RESPONSE_CACHE_S": "0"})
        end_dt = datetime.fromtimestamp(end, UTC)
        start_dt = end_dt - timedelta(days=365)
        with httpx.Client(timeout=120) as client:
            year_q = influxql.select_aggregates(
                ["pm25"], ["mean"], [influxql.station_eq(YEAR_STATION), influxql.time_range(start_dt, end_dt),
                                     influxql.clean_only()], "1h", False)
            api_year = (f"{base}/v1/stations/{YEAR_STATION}/measurements",
                        {"from": start_dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "to": end_dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "interval": "1h"})
            direct_year = (f"{server.url}/query", {"db": DATABASE, "q": year_q})
            rows = len(client.get(api_year[0], params=api_year[1]).json()["results"])
            a, d, ratio_year = ratio(client, api_year, direct_year, args.runs)
            print(f"year of hourly means ({rows} rows): API {a * 1000:.1f} ms, InfluxDB {d * 1000:.1f} ms, "
                  f"ratio {ratio_year:.2f}", flush=True)

            now = datetime.fromtimestamp(int(time.time()), UTC)
            latest_q = latest_statements(LatestQuery(), now, timedelta(days=7))
            api_latest = (f"{base}/v1/latest", {})
            direct_latest = (f"{server.url}/query", {"db": DATABASE, "q": latest_q, "epoch": "s"})
            rows = len(client.get(api_latest[0]).json()["results"])
            a, d, ratio_latest = ratio(client, api_latest, direct_latest, args.runs)
            print(f"latest of {rows} stations: API {a * 1000:.1f} ms, InfluxDB {d * 1000:.1f} ms, "
                  f"ratio {ratio_latest:.2f}", flush=True)

        stop_api(api_proc)
        # The load runs the default configuration (10 s response cache on /latest, /stations, /aqi).
        api_proc, base = start_api(server.url, {})
        started = time.perf_counter()
        latencies, errors = asyncio.run(load(base, args.requests, end_dt))
        wall = time.perf_counter() - started
        for kind in sorted({k for k, _ in latencies}):
            mine = [t for k, t in latencies if k == kind]
            print(f"  {kind:20s} {len(mine):4d} requests: p50 {percentile(mine, 50) * 1000:6.0f} ms, "
                  f"p99 {percentile(mine, 99) * 1000:6.0f} ms", flush=True)
        every = [t for _, t in latencies]
        p50, p99 = percentile(every, 50) * 1000, percentile(every, 99) * 1000
        rate = len(latencies) / wall
        print(f"{CLIENTS} clients, {len(latencies)} requests in {wall:.1f} s ({rate:.0f}/s): "
              f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, errors {errors}", flush=True)
        print(f"conditions at end: {conditions()}", flush=True)
        print(f"ratio_year={ratio_year:.2f} ratio_latest={ratio_latest:.2f} p99_ms={p99:.0f} errors={errors}")
        return 0
    finally:
        if api_proc is not None:
            stop_api(api_proc)
        server.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
