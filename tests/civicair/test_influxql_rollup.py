"""The rollup builders of civicair.influxql, on their text (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from civicair import influxql

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_rollup_compute_is_the_api_aggregate_unrounded_per_station():
    text = influxql.rollup_compute([influxql.station_eq("lab-1"), influxql.clean_only()], "1h")
    assert text.startswith('SELECT MEAN("pm25") AS "pm25_mean", MIN("pm25") AS "pm25_min", '
                           'MAX("pm25") AS "pm25_max", COUNT("pm25") AS "pm25_count", MEAN("pm25_atm")')
    assert text.endswith('FROM "pm" WHERE "station" = \'lab-1\' AND "qc" & 9223372036854775551 = 0 '
                         'GROUP BY time(1h), "station" fill(none)')
    assert "ROUND" not in text


def test_select_rollup_rounds_like_the_api_and_carries_hidden_counts():
    text = influxql.select_rollup(["pm25", "rh"], ["mean", "count"], [influxql.station_eq("a")], "1d",
                                  by_station=True, clean=True)
    assert text == ('SELECT ROUND(MEAN("pm25_mean") * 100) / 100 AS "pm25_mean", SUM("pm25_count") AS '
                    '"pm25_count", ROUND(MEAN("rh_mean") * 100) / 100 AS "rh_mean", SUM("rh_count") AS '
                    '"rh_count", SUM("pm25_count") AS "pm25__n", SUM("rh_count") AS "rh__n" FROM "pm_1d" '
                    'WHERE "station" = \'a\' GROUP BY time(1d), "station" fill(none)')


def test_select_rollup_all_readings_retention_policy_and_zone():
    text = influxql.select_rollup(["pm25_raw"], ["max"], [], "1h", by_station=False, clean=False,
                                  rp="forever", tz="Europe/Amsterdam")
    assert text == ('SELECT MAX("pm25_atm_max_all") AS "pm25_raw_max", SUM("pm25_atm_count_all") AS '
                    '"pm25_raw__n" FROM "forever"."pm_1h" GROUP BY time(1h) fill(none) tz(\'Europe/Amsterdam\')')


@pytest.mark.parametrize(("params", "aggregates", "message"), [
    (["n0_3"], ["mean"], "is not rolled up"), (["pm25"], ["median"], "cannot be answered from rollups"),
    ([], ["mean"], "at least one")], ids=["unrolled parameter", "median", "nothing"])
def test_select_rollup_refuses_what_the_rollups_do_not_hold(params, aggregates, message):
    with pytest.raises(influxql.QueryError, match=message):
        influxql.select_rollup(params, aggregates, [], "1h", by_station=True, clean=True)


def test_qc_has_and_marks_and_state():
    assert influxql.qc_has(4) == '"qc" & 4 != 0'
    with pytest.raises(influxql.QueryError):
        influxql.qc_has(3)
    assert influxql.dirty_marks(T) == ('SELECT "hour" FROM "rollup_dirty" WHERE time > '
                                       "'2026-01-01T00:00:00Z' GROUP BY \"station\"")
    assert influxql.rollup_state("r") == ('SELECT last("cursor") AS "cursor", last("covered_until") AS '
                                          '"covered_until" FROM "r"."rollup_state"')


def test_retention_policy_text_and_bad_duration():
    assert influxql.retention_policy("forever", "airquality", "INF", False, True) == \
        'CREATE RETENTION POLICY "forever" ON "airquality" DURATION INF REPLICATION 1'
    assert influxql.retention_policy("autogen", "airquality", "400d", True, False) == \
        'ALTER RETENTION POLICY "autogen" ON "airquality" DURATION 400d DEFAULT'
    for bad in ("400", "1y", "1d; DROP DATABASE x", ""):
        with pytest.raises(influxql.QueryError, match="retention duration"):
            influxql.retention_policy("autogen", "airquality", bad, True, False)
    with pytest.raises(influxql.QueryError):
        influxql.measurement("pm; DROP")


def test_rollup_coverage_sums_the_channel_counts_per_local_day():
    text = influxql.rollup_coverage("lab-1", T, datetime(2026, 1, 3, tzinfo=UTC), "forever", "1h", "Europe/Amsterdam")
    assert text == ('SELECT sum("readings_a") AS "readings_a", sum("readings_b") AS "readings_b", '
                    'sum("clean_a") AS "clean_a", sum("clean_b") AS "clean_b" FROM "forever"."pm_1h" '
                    'WHERE "station" = \'lab-1\' AND time >= \'2026-01-01T00:00:00Z\' AND '
                    'time < \'2026-01-03T00:00:00Z\' GROUP BY time(1d) fill(none) tz(\'Europe/Amsterdam\')')
    assert 'FROM "pm_1d"' in influxql.rollup_coverage("lab-1", T, T, interval="1d")
    with pytest.raises(influxql.QueryError, match="no rollup for interval"):
        influxql.rollup_coverage("lab-1", T, T, interval="1m")


def test_thing_id_table_and_known_stations_text():
    assert influxql.thing_ids() == 'SELECT last("id") AS "id" FROM "sta_thing" GROUP BY "station"'
    assert influxql.thing_ids("forever") == \
        'SELECT last("id") AS "id" FROM "forever"."sta_thing" GROUP BY "station"'
    assert influxql.known_stations() == 'SHOW TAG VALUES FROM "pm", "station" WITH KEY = "station"'
    with pytest.raises(ValueError):
        influxql.thing_ids('x"; DROP DATABASE "airquality')
