"""/v1/latest with the NowCast's hourly means from the rollups vs from raw (issue 12).

Starts its own InfluxDB in a temp dir, seeds ``--stations`` stations (1000) with 13 hours
of 1-minute readings to now (bench/api_latency.py's readings), runs the rollup worker's
first pass (backfill of pm_1h, pm_1d and the NowCast points), then starts the API twice
under uvicorn (response cache off): ``CIVICAIR_ROLLUPS=true`` and ``false``. Requests
alternate between the two (median of ``--runs``); their bodies must be identical. The last
line is exactly ``ratio_rollups=X on_ms=Y off_ms=Z`` (ratio = on / off; lower is better).

    python bench/latest_nowcast.py [--stations 1000] [--runs 9]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_latency import BATCH, DATABASE, conditions, reading, start_api, stop_api, timed  # noqa: E402

from civicair.influx import Influx, InfluxSettings  # noqa: E402
from civicair.schema.storage import meta_to_line  # noqa: E402
from civicair.services import InfluxDB  # noqa: E402
from rollup.settings import RollupSettings  # noqa: E402
from rollup.worker import Worker  # noqa: E402

HOURS = 13


def seed(db: Influx, stations: int, end: int) -> int:
    batch: list[str] = []
    written = 0
    for s in range(stations):
        for i, ts in enumerate(range(end - HOURS * 3600 + (s % 60), end, 60)):
            batch.append(reading(f"s-{s:04d}", ts, i + s))
            if len(batch) == BATCH:
                db.write(("\n".join(batch) + "\n").encode())
                written, batch = written + len(batch), []
    if batch:
        db.write(("\n".join(batch) + "\n").encode())
        written += len(batch)
    db.write(b"".join(meta_to_line(f"s-{s:04d}", {"name": f"Station {s}", "lat": 52.0 + s / 1000,
                                                 "lon": 5.0 + s / 2000}, end - 3600)
                      for s in range(stations)))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9, help="timed requests per side (median)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="civicair-bench-"))
    print(f"conditions at start: {conditions()}", flush=True)
    server = InfluxDB(state / "influxdb")
    server.start()
    procs = []
    try:
        with Influx(InfluxSettings(url=server.url, database=DATABASE, timeout_s=300)) as db:
            db.create_database()
            started = time.perf_counter()
            n = seed(db, args.stations, int(time.time()) // 60 * 60)
            took = time.perf_counter() - started
            print(f"seeded {n:,} readings of {args.stations} stations in {took:.1f} s", flush=True)
            started = time.perf_counter()
            Worker(RollupSettings(influx_url=server.url, influx_db=DATABASE), db).cycle()
            took = time.perf_counter() - started
            print(f"rollup worker's first pass (backfill) in {took:.1f} s", flush=True)
        on_proc, on = start_api(server.url, {"CIVICAIR_RESPONSE_CACHE_S": "0", "CIVICAIR_ROLLUPS": "true"})
        procs.append(on_proc)
        off_proc, off = start_api(server.url, {"CIVICAIR_RESPONSE_CACHE_S": "0", "CIVICAIR_ROLLUPS": "false"})
        procs.append(off_proc)
        with httpx.Client(timeout=120) as client:
            for _ in range(3):  # an hour boundary between the two would shift every NowCast
                hour = int(time.time()) // 3600
                a, b = client.get(f"{on}/v1/latest").json(), client.get(f"{off}/v1/latest").json()
                if int(time.time()) // 3600 == hour:
                    break
            if a["results"] != b["results"] or len(a["results"]) != args.stations:
                raise SystemExit("rollups on and off answer differently")
            for _ in range(2):  # warm up
                timed(client, f"{on}/v1/latest", {})
                timed(client, f"{off}/v1/latest", {})
            on_s, off_s = [], []
            for _ in range(args.runs):
                on_s.append(timed(client, f"{on}/v1/latest", {}))
                off_s.append(timed(client, f"{off}/v1/latest", {}))
        on_ms, off_ms = statistics.median(on_s) * 1000, statistics.median(off_s) * 1000
        print(f"/v1/latest of {args.stations} stations: rollups {on_ms:.0f} ms "
              f"({min(on_s) * 1000:.0f}-{max(on_s) * 1000:.0f}), raw {off_ms:.0f} ms "
              f"({min(off_s) * 1000:.0f}-{max(off_s) * 1000:.0f}); {args.runs} alternating requests each",
              flush=True)
        print(f"conditions at end: {conditions()}", flush=True)
        print(f"ratio_rollups={on_ms / off_ms:.2f} on_ms={on_ms:.0f} off_ms={off_ms:.0f}")
        return 0
    finally:
        for proc in procs:
            stop_api(proc)
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
