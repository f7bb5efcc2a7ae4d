"""NowCast points (rollup/nowcast.py, issue 12): the worker writes, per station and clock
hour, civicair.schema.nowcast.nowcast() of the stored hourly clean means; a late reading
rewrites exactly the NowCasts its hour feeds; EPA's worked example comes back from the
stored point; the hours the clock passes get their NowCast without any mark."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from civicair import influxql
from civicair.influx import Influx, series
from civicair.schema import aqi, contract, nowcast, storage
from civicair.schema.errors import ContractError
from rollup import nowcast as nowcast_points
from rollup.backfill import backfill
from rollup.nowcast import Span, ends_fed_by, spans
from rollup.settings import RollupSettings
from rollup.worker import Worker
from tests.conftest import DATABASE, wait_until
from tests.ingest.conftest import reading
from tests.rollup.conftest import CLEAN, HOUR, T0, message, stored_total, utc

#: US EPA's worked example ("PM NowCast" fact sheet), most recent hour first: 17.4 µg/m³.
EPA_HOURS = (13, 16, 10, 21, 74, 64, 53, 82, 90, 75, 80, 50)


def stored_nowcasts(influx: Influx) -> dict[tuple[str, int], dict[str, Any]]:
    (result,) = influx.query(influxql.nowcast_points([]), epoch="s")
    return {(s["tags"]["station"], int(row[0])): dict(zip(s["columns"][1:], row[1:], strict=True))
            for s in series(result) for row in s["values"]}


def expected_nowcasts(influx: Influx) -> dict[tuple[str, int], dict[str, Any]]:
    """What the points must hold: nowcast() of the clean hourly means InfluxDB computes from
    raw (the query written out here), at the end of every hour from the first with data to
    12 h after the last."""
    (result,) = influx.query(f'SELECT mean("pm25") FROM "pm" WHERE {CLEAN} AND time >= 0s AND time < now() + 1d '
                             'GROUP BY time(1h), "station" fill(none)', epoch="s")
    out = {}
    for s in series(result):
        means = {int(t): v for t, v in s["values"]}
        for end in range(min(means) + HOUR, max(means) + 13 * HOUR, HOUR):
            found = nowcast.nowcast(nowcast.hourly_series(means, end - HOUR))
            if found is not None:
                index = aqi.us_aqi(found.value)
                out[(s["tags"]["station"], end)] = {"pm25": found.value, "aqi": index.value if index else None,
                                                    "weight": found.weight, "hours": found.hours}
    return out


# -- pure parts -------------------------------------------------------------------------------


def test_an_hour_feeds_the_nowcasts_at_the_ends_of_it_and_the_eleven_after_never_beyond_until():
    h = T0 + 5 * HOUR
    assert ends_fed_by([h], until=h + 100 * HOUR) == [(h + HOUR, h + 12 * HOUR)]
    assert ends_fed_by([h + 59], until=h + 3 * HOUR) == [(h + HOUR, h + 3 * HOUR)]  # the hour's start counts
    assert ends_fed_by([h], until=h) == []  # the hour is not complete yet
    assert ends_fed_by([h, h + 12 * HOUR, h + 40 * HOUR], until=h + 100 * HOUR) == [
        (h + HOUR, h + 24 * HOUR), (h + 41 * HOUR, h + 52 * HOUR)]  # adjacent ranges merge
    assert spans({"b": [h], "a": [h], "c": [h + HOUR]}, until=h + 2 * HOUR) == [
        Span(("a", "b"), h + HOUR, h + 2 * HOUR), Span(("c",), h + 2 * HOUR, h + 2 * HOUR)]


def test_points_use_only_hours_with_clean_readings_and_follow_epas_completeness_rule():
    h = T0
    rows = [[h + i * HOUR, float(c), 3] for i, c in enumerate(reversed(EPA_HOURS))]
    rows.append([h + 12 * HOUR, 999.0, 0])  # a stale mean: its clean count is 0
    result = {"series": [{"name": "pm_1h", "tags": {"station": "epa-1"}, "columns": ["time", "pm25_mean",
                                                                                       "pm25_count"],
                          "values": rows},
                         {"name": "pm_1h", "tags": {"station": "other"}, "columns": ["time", "pm25_mean",
                                                                                       "pm25_count"],
                          "values": [[h, 5.0, 1]]}]}
    found = nowcast_points.points([Span(("epa-1",), h + 12 * HOUR, h + 14 * HOUR)], [result])
    # at h+12h: EPA's example; at h+13h: c_1 (the stale hour) is missing but c_2, c_3 are not;
    # at h+14h: two of the three most recent hours are missing: no NowCast. "other" is not asked for.
    assert set(found) == {("epa-1", h + 12 * HOUR), ("epa-1", h + 13 * HOUR)}
    assert found[("epa-1", h + 12 * HOUR)].value == 17.4
    assert nowcast_points.lines({("epa-1", h + 12 * HOUR): found[("epa-1", h + 12 * HOUR)]}) == \
        f"pm_nowcast,station=epa-1 pm25=17.4,aqi=66i,weight=0.5,hours=12i {h + 12 * HOUR}\n".encode()


def test_the_point_writer_refuses_bad_input_and_marks_beyond_the_aqi():
    value = nowcast.nowcast([400.0, 400.0, 400.0])
    assert value is not None
    assert storage.nowcast_line("x-1", T0, value) == \
        f"pm_nowcast,station=x-1 pm25=400.0,aqi={storage.NOWCAST_BEYOND_AQI}i,weight=1.0,hours=3i {T0}\n".encode()
    with pytest.raises(ValueError, match="end of a whole hour"):
        storage.nowcast_line("x-1", T0 + 60, value)
    with pytest.raises(ContractError, match="station id"):
        storage.nowcast_line("X 1", T0, value)


def test_query_text():
    assert influxql.rollup_hourly_pm25([influxql.station_eq("a")], clean=False, rp="forever") == (
        'SELECT "pm25_mean_all" AS "pm25_mean", "pm25_count_all" AS "pm25_count" FROM "forever"."pm_1h" '
        'WHERE "station" = \'a\' GROUP BY "station"')
    assert nowcast_points.statement(Span(None, T0 + 12 * HOUR, T0 + 13 * HOUR)) == (
        'SELECT "pm25_mean" AS "pm25_mean", "pm25_count" AS "pm25_count" FROM "pm_1h" '
        "WHERE time >= '2025-01-06T00:00:00Z' AND time < '2025-01-06T13:00:00Z' GROUP BY \"station\"")
    assert influxql.nowcast_points([], rp="forever") == \
        'SELECT "pm25", "aqi", "weight", "hours" FROM "forever"."pm_nowcast" GROUP BY "station"'


# -- on the real ingest and InfluxDB ----------------------------------------------------------


def _worker(influxdb) -> Worker:
    return Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_metrics_port=0,
                                 rollup_quiet_s=0))


def _ingest(publisher, influx: Influx, messages: list[tuple[str, bytes]]) -> None:
    before = stored_total(influx)
    publisher.publish_all(messages)
    publisher.settle()
    wait_until(lambda: stored_total(influx) >= before + len(messages), timeout=60, message="readings stored")


def test_worker_writes_the_nowcast_of_the_hourly_means_and_a_late_reading_rewrites_the_next_twelve(
        influx, influxdb, spawn_ingest, publisher):
    worker = _worker(influxdb)
    worker.cycle()  # first start on an empty database
    spawn_ingest()
    # 30 hours, a reading every 20 minutes; nmc-2 is silent in hours 10 and 11 (no NowCast
    # at the ends of hours 11 and 12, EPA's rule) and in hour 20.
    silent = {("nmc-2", h) for h in (10, 11, 20)}
    _ingest(publisher, influx, [message(s, i, T0 + 1200 * i) for i in range(30 * 3) for s in ("nmc-1", "nmc-2")
                                if (s, i // 3) not in silent])
    worker.cycle()
    before = stored_nowcasts(influx)
    assert before == expected_nowcasts(influx)
    nmc2 = {(end - T0) // HOUR for station, end in before if station == "nmc-2"}
    assert {11, 14, 21} <= nmc2 and not {12, 13} & nmc2  # 2 of the 3 most recent hours, or none
    assert max(end for _, end in before) == T0 + 31 * HOUR  # the last hour with data is c_2 there

    late_hour = T0 + 26 * HOUR  # 3 h before the last hour with readings, replayed late
    late = reading("nmc-1", 5000) | {"ts": late_hour + 30 * 60, "pm25_atm": 25.0, "pm25_cf1": 30.0}
    _ingest(publisher, influx, [(contract.readings_topic("nmc-1"), orjson.dumps(late))])  # the mean rises
    worker.cycle()
    after = stored_nowcasts(influx)
    assert after == expected_nowcasts(influx)
    changed = {k for k in after if after[k] != before.get(k)}
    fed = {("nmc-1", late_hour + i * HOUR) for i in range(1, 13)}
    assert ("nmc-1", late_hour + HOUR) in changed and changed <= fed


def test_epas_worked_example_through_the_stored_point(influx):
    lines = [f"pm,station=epa-1,sensor=pms5003,channel=a pm25={float(c)!r},qc=0i,n=20i "
             f"{T0 + (11 - i) * HOUR + 1800}" for i, c in enumerate(EPA_HOURS)]  # the most recent first
    influx.write(("\n".join(lines) + "\n").encode())
    done = backfill(influx, utc(T0), utc(T0 + 12 * HOUR))
    assert done.nowcasts == len(stored_nowcasts(influx)) > 0
    assert stored_nowcasts(influx)[("epa-1", T0 + 12 * HOUR)] == {"pm25": 17.4, "aqi": 66, "weight": 0.5,
                                                                  "hours": 12}
    assert stored_nowcasts(influx) == expected_nowcasts(influx)


def test_the_hours_the_clock_passes_get_their_nowcast_without_marks(influx, influxdb):
    worker = _worker(influxdb)
    h = T0 + 7 * HOUR
    now = h + 3 * HOUR + 130  # hours h, h+1, h+2 complete and settled
    worker.cycle(now)  # first start, nothing stored: no backfill
    influx.write(b"".join(f"pm,station=quiet-1,sensor=pms5003,channel=a pm25={10.0 + i},qc=0i,n=20i "
                          f"{h + i * HOUR + 60}\n".encode() + storage.dirty_line("quiet-1", h + i * HOUR, now + 1)
                          for i in range(3)))
    worker.cycle(now + 10)
    # end h+1h: one of the three most recent hours; h+2h, h+3h: enough.
    assert set(stored_nowcasts(influx)) == {("quiet-1", h + 2 * HOUR), ("quiet-1", h + 3 * HOUR)}
    worker.cycle(now + HOUR)  # the station has stopped; the hour h+3 ends: c_2 and c_3 still count
    worker.cycle(now + 2 * HOUR)  # two of three missing: none
    stored = stored_nowcasts(influx)
    assert set(stored) == {("quiet-1", h + i * HOUR) for i in (2, 3, 4)}
    expected = nowcast.nowcast([None, 12.0, 11.0, 10.0])
    assert expected is not None
    assert stored[("quiet-1", h + 4 * HOUR)] == {
        "pm25": expected.value, "aqi": aqi.us_aqi(expected.value).value, "weight": 10.0 / 12.0, "hours": 3}
