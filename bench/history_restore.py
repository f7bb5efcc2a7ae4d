"""Ingest start-up: reading the quality history back from InfluxDB (ingest/restore.py).

Starts its own InfluxDB (civicair.services.InfluxDB) in a temp dir and seeds 1,000
stations x channels a and b with ``--hours`` of 1-minute windows. Then, ``--runs`` times
each, alternating:

- baseline: the very InfluxQL statement the restore sends, posted straight to InfluxDB
  with httpx (the database's own cost, and the HTTP round trip);
- restore: ``ingest.restore.restore`` into a fresh Cleaner (query, JSON decoding, loading
  the per-series history).

Prints the medians and, as its last line, ``restore_s=X baseline_s=Y ratio=Z``.

    python bench/history_restore.py [--hours 12] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from civicair.influx import Influx, InfluxSettings  # noqa: E402
from civicair.services import InfluxDB  # noqa: E402
from ingest.clean import Cleaner  # noqa: E402
from ingest.restore import query as restore_query  # noqa: E402
from ingest.restore import restore as restore_history  # noqa: E402

DATABASE = "airquality"
LOOKBACK_S = 86400


def seed(influx: Influx, stations: int, hours: int) -> int:
    now = int(time.time()) // 60 * 60
    lines = [f"pm,station=s-{st},sensor=pms5003,channel={ch} pm25_cf1={5 + i % 9}.0,pm25_atm=4.0,qc=0i "
             f"{now - 60 * i}"
             for st in range(stations) for ch in "ab" for i in range(hours * 60)]
    for k in range(0, len(lines), 5000):
        influx.write(("\n".join(lines[k:k + 5000]) + "\n").encode())
    return len(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stations", type=int, default=1000)
    p.add_argument("--hours", type=int, default=12)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="civicair-bench-") as tmp, InfluxDB(Path(tmp)) as db:
        influx = Influx(InfluxSettings(url=db.url, database=DATABASE))
        influx.create_database()
        started = time.perf_counter()
        points = seed(influx, args.stations, args.hours)
        print(f"seeded {points:,} points ({args.stations} stations x 2 channels x {args.hours} h) "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        statement = restore_query(Cleaner().settings.history_depth, LOOKBACK_S)
        baseline, restore = [], []
        with httpx.Client(base_url=db.url, timeout=60) as http:
            for run in range(1, args.runs + 1):
                t = time.perf_counter()
                http.get("/query", params={"db": DATABASE, "q": statement, "epoch": "s"}).raise_for_status()
                baseline.append(time.perf_counter() - t)
                cleaner = Cleaner()
                t = time.perf_counter()
                got = restore_history(influx, cleaner, LOOKBACK_S)
                restore.append(time.perf_counter() - t)
                print(f"run {run}: baseline {baseline[-1]:.3f} s, restore {restore[-1]:.3f} s "
                      f"({got.windows:,} windows of {got.series:,} series)", flush=True)
    b, r = statistics.median(baseline), statistics.median(restore)
    print(f"restore_s={r:.3f} baseline_s={b:.3f} ratio={r / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
