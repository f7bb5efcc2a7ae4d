"""Archive build against exporting the same rows straight from InfluxDB (issue 10).

Starts its own InfluxDB (civicair.services.InfluxDB) in a temp dir, seeds one UTC day of
1,000 stations at 1-minute windows (1.44 M readings, 5000-line batches, the fields the
ingest writes for a PMS5003 with humidity, as bench/api_latency.py does), then measures,
alternating, ``--runs`` times each:

- the baseline: the archive's own InfluxQL statement sent to ``/query`` with
  ``chunked=true`` and CSV output, as the build asks for it (same chunk size, same HTTP
  client settings), every byte read and thrown away;
- the build: ``Archive.build`` of that day into an empty directory (Parquet + CSV.gz,
  row group by row group), in a child process so that its peak RSS is its own.

``ratio_build`` is median build time / median baseline time (goal <= 1.5); ``peak_rss_mb``
the largest resident set of a build child (goal <= 400). The last line is exactly
``ratio_build=X peak_rss_mb=Y parquet_mb=A csv_gz_mb=B rows=N``.

    python bench/archive_build.py [--runs 3] [--stations 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.build import CHUNK_SIZE  # noqa: E402
from civicair import influxql  # noqa: E402
from civicair.influx import Influx, InfluxSettings  # noqa: E402
from civicair.schema.storage import meta_to_line  # noqa: E402
from civicair.services import InfluxDB  # noqa: E402

DATABASE = "airquality"
DAY = date(2026, 11, 29)
BATCH = 5000

#: The build, as ``civicair archive build --day`` runs it, timed inside a child process.
CHILD = """
import json, resource, sys, time
from datetime import date
from archive.build import Archive
from civicair.influx import Influx, InfluxSettings
url, root, day = sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3])
with Influx(InfluxSettings(url=url, database="airquality", timeout_s=300)) as db:
    started = time.perf_counter()
    report = Archive(root).build(db, [day], today=date(2100, 1, 1), explicit=True)
    took = time.perf_counter() - started
print(json.dumps({"seconds": took, "built": [str(d) for d in report.built],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def reading(station: str, ts: int, i: int) -> str:
    """One ``pm`` line as the ingest writes it (corrected pm25, qc, counters)."""
    atm = 4.0 + (i * 7919 % 400) / 10.0
    qc = 4 if i % 997 == 0 else 0  # a few flagged spikes
    return (f"pm,station={station},sensor=pms5003,channel=a pm1_atm={atm * 0.7:.1f},pm25_atm={atm:.1f},"
            f"pm10_atm={atm * 1.3:.1f},pm25_cf1={atm * 1.1:.1f},rh={40 + i % 50}.0,temp={10 + i % 15}.5,"
            f'pm25={atm * 0.52 + 5.7:.2f},pm25_method="epa_barkjohn_2021",qc={qc}i,n=25i,seq={i}i,boot=1i,'
            f"window=60i,synced=true {ts}")


def seed(db: Influx, stations: int) -> int:
    start = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp())
    written, started, batch = 0, time.perf_counter(), []
    for s in range(stations):
        station = f"s-{s:04d}"
        for i in range(1440):
            batch.append(reading(station, start + 60 * i, i + s))  # window ends 00:00 … 23:59
            if len(batch) == BATCH:
                db.write(("\n".join(batch) + "\n").encode())
                written += len(batch)
                batch = []
                if written % 200_000 == 0:
                    print(f"seeding {written:>9,}/{stations * 1440:,} points "
                          f"({written / (time.perf_counter() - started):,.0f}/s)", flush=True)
    if batch:
        db.write(("\n".join(batch) + "\n").encode())
        written += len(batch)
    db.write(b"".join(meta_to_line(f"s-{s:04d}", {"name": f"Station {s}", "lat": 52.0 + s / 1000,
                                                  "lon": 5.0 + s / 2000, "sensors": {"a": "pms5003"}},
                                   start) for s in range(stations)))
    print(f"seeded {written:,} points in {time.perf_counter() - started:.1f} s", flush=True)
    return written


def baseline(url: str) -> float:
    """The archive's statement through /query, chunked, every byte read and dropped."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    q = influxql.archive_readings(start, start + timedelta(days=1))
    params = {"db": DATABASE, "q": q, "epoch": "s", "chunked": "true", "chunk_size": str(CHUNK_SIZE)}
    with httpx.Client(base_url=url, timeout=300) as http:
        started = time.perf_counter()
        with http.stream("GET", "/query", params=params, headers={"Accept": "application/csv"}) as resp:
            resp.raise_for_status()
            for _ in resp.iter_bytes():
                pass
        return time.perf_counter() - started


def build(url: str, root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", CHILD, url, str(root), DAY.isoformat()], env=env,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"build failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--keep", help="keep InfluxDB's data and the last archive in this directory")
    args = parser.parse_args()

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="civicair-archive-bench-"))
    server = InfluxDB(tmp / "influxdb")
    server.start()
    try:
        with Influx(InfluxSettings(url=server.url, database=DATABASE, timeout_s=300)) as db:
            db.create_database()
            rows = seed(db, args.stations)
        print(f"python {platform.python_version()}, {os.cpu_count()} cpus, InfluxDB {server.url}", flush=True)
        baseline(server.url)  # warm InfluxDB's caches: both sides then read a warm database
        base_times, build_times, peaks = [], [], []
        root = tmp / "archive"
        for run in range(args.runs):
            base_times.append(baseline(server.url))
            shutil.rmtree(root, ignore_errors=True)
            result = build(server.url, root)
            assert result["built"] == [DAY.isoformat()], result
            build_times.append(result["seconds"])
            peaks.append(result["peak_rss_mb"])
            print(f"run {run + 1}: export {base_times[-1]:.2f} s, build {build_times[-1]:.2f} s, "
                  f"peak RSS {peaks[-1]:.0f} MB", flush=True)
        files = {p.name: p.stat().st_size for p in (root / "v1").rglob(f"{DAY.isoformat()}.*")}
        parquet = files[f"{DAY.isoformat()}.parquet"] / 1e6
        csv_gz = files[f"{DAY.isoformat()}.csv.gz"] / 1e6
        ratio = statistics.median(build_times) / statistics.median(base_times)
        print(f"export median {statistics.median(base_times):.2f} s; build median "
              f"{statistics.median(build_times):.2f} s; Parquet {parquet:.1f} MB, CSV.gz {csv_gz:.1f} MB "
              f"for {rows:,} readings")
        print(f"ratio_build={ratio:.2f} peak_rss_mb={max(peaks):.0f} parquet_mb={parquet:.1f} "
              f"csv_gz_mb={csv_gz:.1f} rows={rows}")
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
