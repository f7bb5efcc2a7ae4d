"""SensorThings $filter date functions and $count inside $expand: costs against baselines
measured in the same run.

Seeds InfluxDB as bench/api_latency.py does (1,000 stations with a day of 1-minute readings,
one station with a year of them), starts the API under uvicorn (response cache off) and
prints medians of ``--runs`` runs of:

- ``ratio_residual``: a page of 1,000 Observations of the year station's PM2.5 with
  ``hour(phenomenonTime) lt 12`` within a 30-day range (InfluxDB gets the range; every row
  it sends is tested in Python, about 2,000 for the page) divided by the page of 1,000 for the
  range alone;
- ``ratio_count``: the 1,001 PM2.5 Datastreams with ``$expand=Observations($count=true;$top=0)``
  (one ``count()`` grouped by station and channel) divided by the one total count of the same
  Observations (``/Observations?$filter=Datastream/name eq 'PM2.5'&$count=true&$top=0``).

The last line is exactly ``ratio_residual=X ratio_count=Y``.

    python bench/sta_dates.py [--runs 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
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


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per ratio (median)")
    parser.add_argument("--keep", help="state directory to keep (default: a temp dir, removed)")
    args = parser.parse_args()

    state = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="civicair-sta-dates-"))
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
            things = {t["properties"]["station"]: t["@iot.id"] for t in client.get(
                f"{sta}/Things", params={"$top": "2000", "$select": "id,properties"}).json()["value"]}
            ds = ids.datastream_id(things[base.YEAR_STATION], "a", 0)
            start = datetime.fromtimestamp(end, UTC) - timedelta(days=300)
            span = f"phenomenonTime ge {iso(start)} and phenomenonTime lt {iso(start + timedelta(days=30))}"
            link = f"{sta}/Datastreams({ds})/Observations"
            residual = {"$filter": f"{span} and hour(phenomenonTime) lt 12", "$top": "1000"}
            plain = {"$filter": span, "$top": "1000"}
            got = client.get(link, params=residual).json()["value"]
            assert len(got) == 1000 and all(o["resultTime"][11:13] < "12" for o in got)
            a, d, ratio_residual = base.ratio(client, (link, residual), (link, plain), args.runs)
            print(f"page of 1,000 with hour() row by row {a * 1000:.1f} ms, range alone {d * 1000:.1f} ms, "
                  f"ratio {ratio_residual:.2f}", flush=True)

            counted = {"$filter": "name eq 'PM2.5'", "$top": "2000", "$select": "id",
                       "$expand": "Observations($count=true;$top=0)"}
            one = {"$filter": "Datastream/name eq 'PM2.5'", "$count": "true", "$top": "0"}
            body = client.get(f"{sta}/Datastreams", params=counted).json()["value"]
            total = sum(d["Observations@iot.count"] for d in body)
            assert total == client.get(f"{sta}/Observations", params=one).json()["@iot.count"]
            a, d, ratio_count = base.ratio(client, (f"{sta}/Datastreams", counted),
                                           (f"{sta}/Observations", one), args.runs)
            print(f"{len(body)} Datastreams each with its count ({total:,} Observations) {a * 1000:.1f} ms, "
                  f"their one total count {d * 1000:.1f} ms, ratio {ratio_count:.2f}", flush=True)
            grouped = {"db": base.DATABASE, "q": influxql.sta_count_series("pm25", []), "epoch": "s"}
            single = {"db": base.DATABASE, "q": influxql.sta_count("pm25", []), "epoch": "s"}
            a, d, ratio_influx = base.ratio(client, (f"{server.url}/query", grouped),
                                            (f"{server.url}/query", single), args.runs)
            print(f"(in InfluxDB alone: grouped count() {a * 1000:.1f} ms, one count() {d * 1000:.1f} ms, "
                  f"ratio {ratio_influx:.2f})", flush=True)
        print(f"conditions at end: {base.conditions()}", flush=True)
        print(f"ratio_residual={ratio_residual:.2f} ratio_count={ratio_count:.2f}")
        return 0
    finally:
        if api_proc is not None:
            base.stop_api(api_proc)
        server.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
