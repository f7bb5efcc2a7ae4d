"""The InfluxQL builders SensorThings adds to civicair/influxql.py: their exact text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from civicair import influxql
from civicair.influxql import QueryError

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_observation_page_statement():
    q = influxql.sta_observations("pm25", [influxql.series_in([("lab-1", "a")]), influxql.time_compare(">=", T)],
                                  descending=True, limit=101)
    assert q == ('SELECT "pm25" AS "result", "qc", "n", "window", "pm25_method", "station", "channel" FROM "pm" '
                 'WHERE "pm25" = "pm25" AND ("station" = \'lab-1\' AND "channel" = \'a\') '
                 "AND time >= '2026-01-01T00:00:00Z' ORDER BY time DESC LIMIT 101")
    one = influxql.sta_observations("pm25", [influxql.series_in([("lab-1", "a")])], descending=False, limit=10,
                                    one_series=True)
    assert one == ('SELECT "pm25" AS "result", "qc", "n", "window", "pm25_method" FROM "pm" '
                   'WHERE "pm25" = "pm25" AND ("station" = \'lab-1\' AND "channel" = \'a\') '
                   'GROUP BY "station", "channel" ORDER BY time ASC LIMIT 10')


def test_latest_of_every_series_is_one_grouped_selector():
    assert influxql.sta_latest("pm25", [None]) == (
        'SELECT last("pm25") AS "result", "qc", "n", "window", "pm25_method" FROM "pm" GROUP BY "station", "channel"')
    assert influxql.sta_count("rh", [influxql.time_compare("<", T)]) == (
        'SELECT count("rh") AS "count" FROM "pm" WHERE time < \'2026-01-01T00:00:00Z\'')


def test_value_conditions_and_series():
    left = influxql.sta_arith("mul", influxql.sta_field("pm10_atm"), influxql.number_literal(2))
    assert influxql.sta_compare("ge", left, influxql.number_literal(-1.5)) == '("pm10_atm" * 2.0) >= -1.5'
    assert influxql.sta_bool("or", ['"rh" = 1.0', '"rh" != 2.0']) == '("rh" = 1.0 OR "rh" != 2.0)'
    assert influxql.series_in([("a-1", "a"), ("b-2", "b")]) == (
        '(("station" = \'a-1\' AND "channel" = \'a\') OR ("station" = \'b-2\' AND "channel" = \'b\'))')
    assert influxql.station_positions() == 'SELECT "lat", "lon", "exact_location" FROM "station" GROUP BY "station"'
    assert influxql.first_seen_series() == 'SELECT first("n") AS "n" FROM "pm" GROUP BY "station", "channel"'


@pytest.mark.parametrize("call", [
    lambda: influxql.number_literal(float("nan")), lambda: influxql.number_literal(1e301),
    lambda: influxql.number_literal("1"), lambda: influxql.number_literal(True),  # type: ignore[arg-type]
    lambda: influxql.sta_field("pm25; DROP"), lambda: influxql.sta_compare("like", "a", "b"),
    lambda: influxql.sta_arith("pow", "a", "b"), lambda: influxql.sta_bool("xor", ["a"]),
    lambda: influxql.series_in([("Bad Station", "a")]), lambda: influxql.series_in([("ok", "c")]),
    lambda: influxql.series_in([]), lambda: influxql.time_compare("!=", T),
])
def test_builders_refuse_anything_off_their_lists(call):
    with pytest.raises(QueryError):
        call()


def test_field_seen_statement():
    assert influxql.field_seen("rh") == 'SELECT last("rh") AS "value" FROM "pm" GROUP BY "station", "channel"'
    with pytest.raises(QueryError):
        influxql.field_seen("rh; DROP")


def test_counts_of_every_series_are_one_grouped_statement():
    assert influxql.sta_count_series("pm25", [influxql.time_compare(">=", T)]) == (
        'SELECT count("pm25") AS "count" FROM "pm" WHERE time >= \'2026-01-01T00:00:00Z\' GROUP BY "station", "channel"')
    with pytest.raises(QueryError):
        influxql.sta_count_series("pm25; DROP", [])
