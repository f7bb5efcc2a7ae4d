"""The API answers interval=1h/1d, /v1/aqi and station coverage from the rollups with
exactly the responses it computes from raw (values and qc), and says which it used
(``meta.source``)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from api import rollups
from civicair.influx import Influx, InfluxSettings
from civicair.schema.storage import meta_to_line
from civicair.services import InfluxDB
from rollup.backfill import backfill
from rollup.settings import RollupSettings
from rollup.worker import Worker
from tests.api.conftest import DAY, HOUR, T0, make_client, pm_line, write
from tests.conftest import DATABASE

STATIONS = ("ab-1", "lab-2", "lab-3")


def _seed(influx: Influx) -> None:
    """Two days of 10-minute readings: lab-2 has channels a and b (their means merge),
    lab-3 has no humidity; a few readings are flagged; values carry 1-2 decimals, so
    rounding ties are common."""
    rng = random.Random(7)
    lines = []
    for station in STATIONS:
        for ts in range(T0, T0 + 2 * DAY, 600):
            for channel in ("a", "b") if station == "lab-2" else ("a",):
                qc = rng.choice([0] * 8 + [256, 4, 8 | 256])
                extra = {} if station == "lab-3" else {"rh": round(rng.uniform(30, 95), 1),
                                                       "temp": round(rng.uniform(-5, 30), 1)}
                atm = rng.randint(0, 60)
                lines.append(pm_line(station, ts, channel=channel, qc=qc, pm25=round(atm * 0.52 + 1.27, 2),
                                     pm25_atm=atm, pm1_atm=atm // 2, pm10_atm=atm + rng.randint(0, 9), **extra))
    # An hour whose only clean reading is flagged after its rollup was computed (below).
    lines.append(pm_line("lab-3", T0 + 2 * DAY + 60, qc=0, pm25=5.0, pm25_atm=8))
    # A duty-cycled station (issue 12): one 60 s window every 15 minutes, a few missing.
    influx.write(meta_to_line("duty-1", {"window": 60, "duty_period": 900}, T0 - DAY))
    lines += [pm_line("duty-1", ts + 60, pm25=8.0, qc=4 if ts % 7 == 0 else 0)
              for ts in range(T0, T0 + 2 * DAY, 900) if ts % 11]
    write(influx, lines)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """One seeded, rolled-up database for the module (the requests only read)."""
    with InfluxDB(tmp_path_factory.mktemp("influxdb")) as db, \
            Influx(InfluxSettings(url=db.url, database=DATABASE)) as influx:
        influx.create_database()
        _seed(influx)
        Worker(RollupSettings(influx_url=db.url, influx_db=DATABASE), influx).cycle()  # first start: backfill
        # The lone clean reading gets flagged later: its hour's clean statistics must vanish.
        write(influx, pm_line("lab-3", T0 + 2 * DAY + 60, qc=4, pm25=5.0, pm25_atm=8))
        backfill(influx, utc(T0 + 2 * DAY), utc(T0 + 2 * DAY + HOUR))
        yield db


@pytest.fixture
def rolled(server: InfluxDB) -> Iterator[Influx]:
    with Influx(InfluxSettings(url=server.url, database=DATABASE)) as influx:
        yield influx


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


QUERIES = [
    "/v1/measurements?stations=ab-1,lab-2,lab-3&interval=1h&from=2026-01-01&to=2026-01-03T01:00:00Z"
    "&params=pm25,pm25_raw,pm10,rh,temp&aggregates=mean,min,max,count",
    "/v1/measurements?stations=ab-1,lab-2,lab-3&interval=1h&from=2026-01-01T00:17:00Z"
    "&to=2026-01-02T13:41:00Z&params=pm25,rh&aggregates=mean,count",
    "/v1/measurements?stations=ab-1,lab-2,lab-3&interval=1h&from=2026-01-01&to=2026-01-04"
    "&include_flagged=true&params=pm25,pm1,temp&aggregates=mean,max,count",
    "/v1/measurements?stations=lab-2,lab-3&interval=1h&from=2026-01-01&to=2026-01-02&tz=Europe/Amsterdam",
    "/v1/measurements?stations=ab-1,lab-2,lab-3&interval=1d&from=2026-01-01&to=2026-01-04"
    "&params=pm25,pm25_raw,rh&aggregates=mean,min,max,count",
    "/v1/measurements?stations=ab-1,lab-2,lab-3&interval=1d&from=2025-12-31T22:00:00Z&to=2026-01-02T05:00:00Z"
    "&include_flagged=true",
    "/v1/stations/lab-2/measurements?interval=1h&from=2026-01-01&to=2026-01-03&params=pm25,rh"
    "&aggregates=mean,count",
    "/v1/stations/lab-2/measurements?interval=1d&from=2026-01-01&to=2026-01-03&format=csv",
    "/v1/aqi?from=2026-01-01&to=2026-01-03T00:00:00Z",
    "/v1/aqi?stations=duty-1&from=2026-01-01&to=2026-01-03",
    # Station coverage: UTC days from pm_1d, local days from pm_1h, partial days from raw.
    "/v1/stations/lab-2?from=2026-01-01&to=2026-01-04",
    "/v1/stations/lab-2?from=2025-12-31T22:00:00Z&to=2026-01-02T05:17:00Z",
    "/v1/stations/lab-3?from=2025-12-31&to=2026-01-04&tz=Europe/Amsterdam",
    "/v1/stations/duty-1?from=2026-01-01&to=2026-01-03",
    "/v1/stations/duty-1?from=2026-01-01T06:00:00Z&to=2026-01-03&tz=America/New_York",
    "/v1/aqi?from=2026-01-01&to=2026-01-02T12:30:00Z&include_flagged=true",
]


def _without_source(body: dict[str, Any]) -> dict[str, Any]:
    return body | {"meta": {k: v for k, v in body["meta"].items() if k != "source"}}


@pytest.mark.parametrize("url", QUERIES)
def test_rollup_answers_are_identical_to_raw(server: InfluxDB, url: str) -> None:
    with make_client(server) as on, make_client(server, rollups=False) as off:
        a, b = on.get(url), off.get(url)
    assert a.status_code == b.status_code == 200, a.text
    if "format=csv" in url:
        assert a.text == b.text
        assert a.headers["X-Civicair-Source"] == "rollup_1d" and b.headers["X-Civicair-Source"] == "raw"
        return
    body_on, body_off = a.json(), b.json()
    assert body_off["meta"]["source"] == "raw"
    assert body_on["meta"]["source"] in ("rollup_1h", "rollup_1d")
    assert body_on["results"], "the comparison needs data"
    assert _without_source(body_on) == _without_source(body_off)


def test_stale_clean_statistics_are_not_served(server: InfluxDB, rolled: Influx) -> None:
    url = "/v1/stations/lab-3/measurements?interval=1h&from=2026-01-03&to=2026-01-03T01:00:00Z"
    with make_client(server) as on:
        body = on.get(url).json()
    (result,) = rolled.query('SELECT "pm25_mean", "pm25_count" FROM "pm_1h" WHERE time = \'2026-01-03T00:00:00Z\'')
    assert result["series"][0]["values"][0][1:] == [5.0, 0]  # stored, stale, counted 0
    assert body["meta"]["source"] == "rollup_1h" and body["results"] == []


def test_median_and_unrolled_parameters_come_from_raw(server: InfluxDB) -> None:
    with make_client(server) as on:
        median = on.get("/v1/stations/lab-2/measurements?interval=1h&from=2026-01-01&to=2026-01-02"
                        "&aggregates=median").json()
        counts = on.get("/v1/stations/lab-2/measurements?interval=1d&from=2026-01-01&to=2026-01-02"
                        "&params=n0_3").json()
    assert median["meta"]["source"] == counts["meta"]["source"] == "raw"


def test_rollups_raise_the_bucket_cap(server: InfluxDB) -> None:
    url = "/v1/measurements?stations=ab-1,lab-2,lab-3&interval=1h&from=2026-01-01&to=2026-01-03"
    with make_client(server, max_buckets=50) as on, make_client(server, max_buckets=50, rollups=False) as off:
        assert on.get(url).status_code == 200
        assert off.get(url).json()["code"] == "too_many_rows"


def test_the_part_read_raw_keeps_the_raw_bucket_cap(influxdb: InfluxDB, influx: Influx) -> None:
    """A worker far behind (watermark an hour into a year): the hours after its watermark are
    read raw, so the rollups' cap does not apply to them."""
    write(influx, [pm_line("ab-1", T0 + 60, pm25=3.0), pm_line("ab-1", T0 + HOUR + 60, pm25=5.0),
                   f"rollup_state cursor={T0 + HOUR}i,covered_until={T0 + HOUR}i {T0 + HOUR}"])
    backfill(influx, utc(T0), utc(T0 + HOUR))  # the one hour the worker got to
    year = "/v1/measurements?stations=ab-1,lab-2,lab-3&interval=1h&from=2026-01-01&to=2026-12-31&params=pm25"
    with make_client(influxdb, max_buckets=20_000) as api:
        refused = api.get(year).json()
        assert refused["code"] == "too_many_rows" and "read raw" in refused["detail"]
        body = api.get(year.replace("to=2026-12-31", "to=2026-03-01")).json()
    assert body["meta"]["source"] == "rollup_1h"  # its first hour; the next one read raw
    assert [r["pm25_mean"] for r in body["results"]] == [3.0, 5.0]


def test_station_coverage_from_rollups_names_its_source(server: InfluxDB) -> None:
    with make_client(server) as on:
        utc_days = on.get("/v1/stations/duty-1?from=2026-01-01&to=2026-01-03").json()
        local = on.get("/v1/stations/lab-2?from=2026-01-01&to=2026-01-03&tz=Europe/Amsterdam").json()
        half_hour = on.get("/v1/stations/lab-2?from=2026-01-01&to=2026-01-03&tz=Asia/Kolkata").json()
    assert (utc_days["meta"]["source"], local["meta"]["source"]) == ("rollup_1d", "rollup_1h")
    assert half_hour["meta"]["source"] == "raw"  # UTC+5:30: its days are not made of UTC hours
    coverage = utc_days["results"][0]["coverage"]
    # 96 windows a day expected (one per duty period); every 11th slot is missing, every 7th flagged.
    assert coverage["duty_period_s"] == 900
    assert [(d["windows"], d["expected"]) for d in coverage["days"]] == [(87, 96), (87, 96)]
    assert sum(d["windows"] - d["clean"] for d in coverage["days"]) == sum(
        1 for ts in range(T0, T0 + 2 * DAY, 900) if ts % 11 and ts % 7 == 0)


def test_the_source_is_raw_when_every_row_came_from_raw(influxdb: InfluxDB, influx: Influx) -> None:
    """A range the rollups cover but for the current hour: a station whose only readings are
    in that hour is answered from raw alone, and says so (as with rollups off); one with
    readings in the covered hours too says ``rollup_1h``."""
    now = int(time.time())
    hour, day = now // HOUR * HOUR, now // DAY * DAY
    write(influx, [pm_line("new-1", now - 30, pm25=7.0), pm_line("old-2", now - 30, pm25=5.0),
                   pm_line("old-2", hour - 3 * HOUR + 60, pm25=4.0)])
    Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0), influx).cycle()
    span = f"from={utc(hour - DAY).isoformat()}&to={utc(hour + HOUR).isoformat()}".replace("+00:00", "Z")
    days = f"from={utc(day - 2 * DAY).date()}&to={utc(day + DAY).date()}"
    urls = [f"/v1/measurements?stations=new-1&interval=1h&{span}&params=pm25",
            f"/v1/stations/new-1/measurements?interval=1h&{span}&params=pm25&format=csv",
            f"/v1/measurements?stations=new-1,none-3&interval=1d&{days}&params=pm25",
            f"/v1/aqi?stations=new-1&{span}",
            f"/v1/stations/new-1?{days}"]
    with make_client(influxdb) as on, make_client(influxdb, rollups=False) as off:
        for url in urls:
            a, b = on.get(url), off.get(url)
            assert a.status_code == b.status_code == 200, a.text
            if "format=csv" in url:
                assert a.text == b.text and a.headers["X-Civicair-Source"] == b.headers["X-Civicair-Source"] == "raw"
                continue
            assert a.json()["meta"]["source"] == "raw", url
            assert a.json() == b.json(), url
        mixed = on.get(f"/v1/measurements?stations=new-1,old-2&interval=1h&{span}&params=pm25").json()
        nothing = on.get(f"/v1/measurements?stations=none-3&interval=1h&{span}&params=pm25").json()
    assert mixed["meta"]["source"] == "rollup_1h"  # the covered hours from the rollups, the current one raw
    assert [(r["station"], r["pm25_mean"]) for r in mixed["results"]] == [("new-1", 7.0), ("old-2", 4.0),
                                                                         ("old-2", 5.0)]
    assert nothing["meta"]["source"] == "raw" and nothing["results"] == []


def test_the_source_names_the_rollup_when_it_answered_the_whole_range() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    whole = rollups.split(t, t.replace(day=3), "1h", t.replace(day=5))
    edges = rollups.split(t, t.replace(day=3, minute=30), "1h", t.replace(day=5))
    none = rollups.split(t, t.replace(day=3), "1h", None)
    assert (whole.source("1h"), whole.source("1h", rollup_rows=True)) == ("rollup_1h", "rollup_1h")
    assert (edges.source("1h"), edges.source("1h", rollup_rows=True)) == ("raw", "rollup_1h")
    assert none.source("1h", rollup_rows=True) == "raw"


def test_a_missing_rollup_policy_is_logged_once_with_the_fix(influxdb: InfluxDB, influx: Influx, caplog) -> None:
    caplog.set_level(logging.INFO, logger="civicair.api")
    write(influx, pm_line("ab-1", T0 + 60, pm25=3.0))
    url = "/v1/stations/ab-1/measurements?interval=1h&from=2026-01-01&to=2026-01-02"
    with make_client(influxdb, rollup_rp="nope") as api:
        api.app.state.rollup_coverage.ttl_s = 0  # read the state on every request
        bodies = [api.get(url).json() for _ in range(3)]
        influx.query(f'CREATE RETENTION POLICY "nope" ON "{DATABASE}" DURATION INF REPLICATION 1', method="POST")
        bodies += [api.get(url).json() for _ in range(2)]
    assert [b["results"] for b in bodies] == [[{"time": "2026-01-01T00:00:00Z", "pm25_mean": 3.0}]] * 5
    lines = [r.getMessage() for r in caplog.records if "rollup state" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "retention policy not found" in lines[0] and "`civicair rollup init` creates it" in lines[0]
    assert lines[1].startswith("rollup state readable again")
