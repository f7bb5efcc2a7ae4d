"""SensorThings latency against its baselines (issue 11), from one run.

Starts its own InfluxDB in a temp dir and seeds it as bench/api_latency.py does (1,000
stations with a day of 1-minute readings, one station with a year of them), starts the
API under uvicorn (response cache off), then measures the median of ``--runs`` runs of:

- ``ratio_latest``: the map request every SensorThings client makes,
  ``/sta/v1.1/Datastreams?$filter=name eq 'PM2.5'&$expand=Thing,Observations($orderby=
  phenomenonTime desc;$top=1)&$top=1000`` (all 1,000 stations on one page), divided by
  ``/v1/latest`` for the same stations (goal <= 1.5);
- ``ratio_page``: a 10,000-Observation page of the year station's PM2.5 Datastream in a
  time range, divided by the statement the API sends for it, sent straight to InfluxDB by the
  same client with the same ``Accept-Encoding`` (goal <= 1.3); then, for each, where the time
  goes as the client sees it (until the headers, the body, inflating it);
- ``ratio_deep`` (information): page 50 of that Datastream, reached by its nextLink
  (keyset), divided by page 1.

The SensorThings catalogue (stations, positions, series) is cached for 10 s per process
(api/sta/router.py); the runs alternate with their baseline, so reloads hit both alike only
in that they fall inside the medians. The last line is exactly
``ratio_latest=X ratio_page=Y``.

    python bench/sta_latency.py [--runs 9] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_latency as base  # noqa: E402

from api.sta import ids  # noqa: E402
from civicair import influxql  # noqa: E402
from civicair.influx import Influx, InfluxSettings  # noqa: E402
from civicair.services import InfluxDB  # noqa: E402

PAGE = 10_000
MAP_QUERY = {"$filter": "name eq 'PM2.5'", "$top": "1000",
             "$expand": "Thing,Observations($orderby=phenomenonTime desc;$top=1)"}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def split(client: httpx.Client, url: str, params: dict, runs: int) -> str:
    """Where a request's time goes, as the client sees it (medians): until the headers (the
    server's work, for a body sent in one piece), the compressed body, and inflating it."""
    parts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with client.stream("GET", url, params=params) as r:
            t1 = time.perf_counter()
            raw = b"".join(r.iter_raw())
            t2 = time.perf_counter()
            gzipped = r.headers.get("content-encoding") == "gzip"
            body = zlib.decompress(raw, 16 + zlib.MAX_WBITS) if gzipped else raw
        parts.append((t1 - t0, t2 - t1, time.perf_counter() - t2, len(raw), len(body)))
    m = [statistics.median(p[k] for p in parts) * 1000 for k in range(3)]
    return (f"headers {m[0]:.1f} ms, body {m[1]:.1f} ms, inflate {m[2]:.1f} ms "
            f"({parts[0][3]:,} bytes sent, {parts[0][4]:,} of JSON)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per ratio (median)")
    parser.add_argument("--keep", help="state directory to keep (default: a temp dir, removed)")
    args = parser.parse_args()

    state = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="civicair-sta-bench-"))
    print(f"conditions at start: {base.conditions()}", flush=True)
    server = InfluxDB(state / "influxdb")
    server.start()
    api_proc = None
    try:
        with Influx(InfluxSettings(url=server.url, database=base.DATABASE, timeout_s=120)) as db:
            db.create_database()
            end = int(time.time()) // 60 * 60
            base.seed(db, end)
        api_proc, url = base.start_api(server.url, {"CIVICAIR_RESPONSE_CACHE_S": "0"})
        sta = f"{url}/sta/v1.1"
        with httpx.Client(timeout=120) as client:
            body = client.get(f"{sta}/Datastreams", params=MAP_QUERY).json()
            with_obs = sum(1 for d in body["value"] if d["Observations"])
            latest_rows = len(client.get(f"{url}/v1/latest").json()["results"])
            a, d, ratio_latest = base.ratio(client, (f"{sta}/Datastreams", MAP_QUERY),
                                            (f"{url}/v1/latest", {}), args.runs)
            print(f"latest of {with_obs} Datastreams: SensorThings {a * 1000:.1f} ms, /v1/latest "
                  f"({latest_rows} stations) {d * 1000:.1f} ms, ratio {ratio_latest:.2f}", flush=True)

            things = {t["properties"]["station"]: t["@iot.id"] for t in client.get(
                f"{sta}/Things", params={"$top": "2000", "$select": "id,properties"}).json()["value"]}
            thing = things[base.YEAR_STATION]
            ds = ids.datastream_id(thing, "a", 0)
            end_dt = datetime.fromtimestamp(end, UTC)
            start = end_dt - timedelta(days=300)
            stop = start + timedelta(days=30)
            page_q = {"$filter": f"phenomenonTime ge {iso(start)} and phenomenonTime lt {iso(stop)}",
                      "$orderby": "phenomenonTime asc", "$top": str(PAGE)}
            # The statement the API sends for this page (api/sta/observations.py), as a user would
            # send it to /query: same client, same Accept-Encoding (InfluxDB gzips too), read fully.
            direct = influxql.sta_observations(
                "pm25", [influxql.series_in([(base.YEAR_STATION, "a")]), influxql.time_compare(">=", start),
                         influxql.time_compare("<", stop)], False, PAGE + 1, one_series=True)
            got = client.get(f"{sta}/Datastreams({ds})/Observations", params=page_q).json()
            assert len(got["value"]) == PAGE, len(got["value"])
            a, d, ratio_page = base.ratio(client, (f"{sta}/Datastreams({ds})/Observations", page_q),
                                          (f"{server.url}/query", {"db": base.DATABASE, "q": direct,
                                                                   "epoch": "s"}), args.runs)
            print(f"page of {PAGE} Observations: SensorThings {a * 1000:.1f} ms, InfluxDB {d * 1000:.1f} ms, "
                  f"ratio {ratio_page:.2f}", flush=True)
            for name, (u, params) in (("SensorThings", (f"{sta}/Datastreams({ds})/Observations", page_q)),
                                      ("InfluxDB", (f"{server.url}/query", {"db": base.DATABASE, "q": direct,
                                                                            "epoch": "s"}))):
                print(f"  {name}: {split(client, u, params, args.runs)}", flush=True)

            small = {"$orderby": "phenomenonTime asc", "$top": "1000"}
            link = f"{sta}/Datastreams({ds})/Observations"
            first = (link, small)
            body = client.get(link, params=small).json()
            for _ in range(48):
                body = client.get(body["@iot.nextLink"]).json()
            deep = (body["@iot.nextLink"], {})
            a, d, ratio_deep = base.ratio(client, deep, first, args.runs)
            print(f"page 50 by nextLink {a * 1000:.1f} ms, page 1 {d * 1000:.1f} ms, ratio {ratio_deep:.2f}",
                  flush=True)
        print(f"conditions at end: {base.conditions()}", flush=True)
        print(f"ratio_latest={ratio_latest:.2f} ratio_page={ratio_page:.2f}")
        return 0
    finally:
        if api_proc is not None:
            base.stop_api(api_proc)
        server.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
