"""/v1/latest reads the NowCast's hourly means from the rollups where they cover them
(issue 12) and answers exactly as it does from raw: the whole response, rollups on or
off, with every hour rolled up and with the last hours not yet covered."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from api.filters import LatestQuery
from api.routers.latest import hour_split, statements
from civicair.influx import Influx, series
from civicair.services import InfluxDB
from rollup.settings import RollupSettings
from rollup.worker import Worker
from tests.api.conftest import HOUR, make_client, pm_line, write
from tests.conftest import DATABASE

URLS = ["/v1/latest", "/v1/latest?include_flagged=true", "/v1/latest?stations=gap-2&params=pm25_raw,rh",
        "/v1/latest?format=csv"]


def _seed(influx: Influx, now: int) -> None:
    """14 hours of 10-minute readings to a minute ago: two channels at ab-1, flags at random,
    gap-2 silent two hours ago (its NowCast then rests on c_1 and c_3)."""
    rng = random.Random(12)
    lines = []
    start = now // HOUR * HOUR - 14 * HOUR
    for ts in range(start, now - 60, 600):
        for station, channel in (("ab-1", "a"), ("ab-1", "b"), ("gap-2", "a")):
            if station == "gap-2" and (now - ts) // HOUR == 2:
                continue
            lines.append(pm_line(station, ts, channel=channel, qc=rng.choice([0] * 6 + [4, 256]),
                                 pm25=round(rng.uniform(2, 80), 2), pm25_atm=rng.randint(3, 90),
                                 rh=round(rng.uniform(30, 90), 1)))
    write(influx, lines)


def _responses(server: InfluxDB) -> tuple[list[Any], list[Any]]:
    with make_client(server) as on, make_client(server, rollups=False) as off:
        got = [(on.get(url), off.get(url)) for url in URLS]
    for a, b in got:
        assert a.status_code == b.status_code == 200, a.text
    return ([a.text if "csv" in str(a.url) else a.json() for a, _ in got],
            [b.text if "csv" in str(b.url) else b.json() for _, b in got])


def _same_hour(check: Any) -> Any:
    for _ in range(3):  # an hour boundary between two requests shifts every NowCast: ask again
        hour = int(time.time()) // HOUR
        outcome = check()
        if int(time.time()) // HOUR == hour:
            return outcome
    raise AssertionError("three hour boundaries in a row")


def _state(influx: Influx, covered_until: int) -> None:
    now = int(time.time())
    influx.write(f"rollup_state cursor={now}i,covered_until={covered_until}i {now + 1}\n".encode())


def test_latest_is_the_same_rollups_on_or_off(influx: Influx, influxdb: InfluxDB) -> None:
    now = int(time.time())
    _seed(influx, now)
    Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE), influx).cycle()  # first start: backfill

    def compare() -> None:
        on, off = _responses(influxdb)
        assert on == off
        rows = {r["station"]: r for r in on[0]["results"]}
        assert rows["ab-1"]["aqi_basis"] == rows["gap-2"]["aqi_basis"] == "nowcast"

    _same_hour(compare)
    # The last three hours not rolled up yet (a worker behind): those come from raw.
    _state(influx, now // HOUR * HOUR - 3 * HOUR)
    _same_hour(compare)


def test_latest_reads_the_rolled_up_hours(influx: Influx, influxdb: InfluxDB) -> None:
    now = int(time.time())
    _seed(influx, now)
    Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE), influx).cycle()
    _state(influx, now // HOUR * HOUR)  # every hour of the NowCast covered

    def tampered() -> tuple[dict, dict]:
        hour = int(time.time()) // HOUR * HOUR
        # A rolled-up hour that disagrees with raw (only a test writes one): the rollups are read.
        influx.write(f"pm_1h,station=gap-2 pm25_mean=300.0,pm25_count=6i {hour - HOUR}\n".encode())
        with make_client(influxdb) as on, make_client(influxdb, rollups=False) as off:
            return (next(r for r in on.get("/v1/latest").json()["results"] if r["station"] == "gap-2"),
                    next(r for r in off.get("/v1/latest").json()["results"] if r["station"] == "gap-2"))

    on, off = _same_hour(tampered)
    assert on["nowcast"] > off["nowcast"] + 50


def test_hour_split_and_statements() -> None:
    now = datetime(2026, 1, 1, 12, 1, 5, tzinfo=UTC)
    start, end = datetime(2026, 1, 1, 0, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert hour_split(now, None) == (start, start, end)
    assert hour_split(now, datetime(2026, 1, 1, 11, tzinfo=UTC)) == (start, datetime(2026, 1, 1, 11, tzinfo=UTC), end)
    assert hour_split(now, datetime(2026, 1, 2, tzinfo=UTC)) == (start, end, end)
    assert hour_split(now, datetime(2025, 1, 1, tzinfo=UTC)) == (start, start, end)
    q, week = LatestQuery(), timedelta(days=7)
    covered = statements(q, now, week, end, "forever").split("; ")
    assert covered[4:] == ['SELECT "pm25_mean" AS "pm25_mean", "pm25_count" AS "pm25_count" FROM "forever"."pm_1h" '
                           "WHERE time >= '2026-01-01T00:00:00Z' AND time < '2026-01-01T12:00:00Z' "
                           'GROUP BY "station"']
    split = statements(q, now, week, datetime(2026, 1, 1, 11, tzinfo=UTC)).split("; ")
    assert len(split) == 6 and '"pm_1h"' in split[4] and "time < '2026-01-01T11:00:00Z'" in split[4]
    assert split[5].startswith('SELECT MEAN("pm25") AS "pm25_mean" FROM "pm" WHERE '
                               "time >= '2026-01-01T11:00:00Z' AND time < '2026-01-01T12:00:00Z'")
    assert statements(q, now, week).split("; ")[4].startswith('SELECT MEAN("pm25")')  # no rollups: raw


def test_with_a_retention_policy_for_the_rollups(influx: Influx, influxdb: InfluxDB) -> None:
    influx.query(f'CREATE RETENTION POLICY "forever" ON "{DATABASE}" DURATION INF REPLICATION 1', method="POST")
    now = int(time.time())
    _seed(influx, now)
    Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_rp="forever"), influx).cycle()
    # The NowCast points live with the rollups; /latest reads the hourly means there.
    (kept,) = influx.query('SELECT last("pm25") FROM "forever"."pm_nowcast" GROUP BY "station"')
    (default,) = influx.query('SELECT count("pm25") FROM "pm_nowcast"')
    assert {s["tags"]["station"] for s in series(kept)} == {"ab-1", "gap-2"} and not series(default)

    def compare() -> None:
        with make_client(influxdb, rollup_rp="forever") as on, make_client(influxdb, rollups=False) as off:
            assert on.get("/v1/latest").json() == off.get("/v1/latest").json()

    _same_hour(compare)
