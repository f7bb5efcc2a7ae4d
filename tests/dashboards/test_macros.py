"""Grafana's InfluxQL macro expansion, on values worked out by hand from Grafana's code."""

from __future__ import annotations

import pytest

from dashboards.macros import (
    Context,
    TimeRange,
    Variable,
    calculate_interval,
    escape_regex,
    expand,
    format_interval,
    influx_regular_escape,
    parse_time,
    range_switch,
    referenced,
    round_interval,
    unresolved,
)

NOW = 1_800_000_000_000  # ms
DAY = 86_400_000
RANGE = TimeRange(NOW - DAY, NOW)


def ctx(interval_ms: int = 60_000, **variables: Variable) -> Context:
    return Context(RANGE, interval_ms, variables)


def test_time_filter_becomes_absolute_millisecond_bounds_as_the_backend_writes_them():
    q = 'SELECT mean("pm25") FROM "pm" WHERE $timeFilter'
    assert expand(q, ctx()) == (
        'SELECT mean("pm25") FROM "pm" WHERE time >= 1799913600000ms and time <= 1800000000000ms'
    )


def test_interval_macros_in_grafana_order_without_clobbering_interval_ms():
    q = "GROUP BY time($__interval) x $__interval_ms y $interval"
    assert expand(q, ctx(300_000)) == "GROUP BY time(5m) x 300000 y 5m"


@pytest.mark.parametrize("text", ["'$station'", "'${station}'", "'[[station]]'"])
def test_variable_syntaxes_all_expand(text):
    assert expand(text, ctx(station=Variable("station", ("lab-1",)))) == "'lab-1'"


def test_regex_form_with_single_value_is_regex_escaped_like_grafana():
    v = Variable("station", ("a.b",))
    assert expand("/^$station$/", ctx(station=v)) == r"/^a\.b$/"
    assert expand("/^${station:regex}$/", ctx(station=v)) == r"/^a\.b$/"


def test_multi_value_variable_joins_with_pipes():
    v = Variable("station", ("lab-1", "park-2"), multi=True)
    assert expand("/^$station$/", ctx(station=v)) == "/^lab-1|park-2$/"
    assert expand("/^${station:regex}$/", ctx(station=v)) == "/^(lab-1|park-2)$/"


def test_global_time_variables():
    q = "$__from $__to ${__from:date:seconds} $__range_ms $__range_s $__range ${__to:date}"
    assert expand(q, ctx()) == (
        "1799913600000 1800000000000 1799913600 86400000 86400 86400s 2027-01-15T08:00:00.000Z"
    )


def test_unknown_variables_are_left_as_typed_and_reported():
    out = expand("WHERE x = '$nope' AND $timeFilter", ctx())
    assert "'$nope'" in out
    assert unresolved(out) == {"nope"}


def test_referenced_finds_every_syntax():
    assert referenced("$a ${b} [[c]] ${d:regex} $__interval") == {"a", "b", "c", "d", "__interval"}


@pytest.mark.parametrize("raw_ms, rounded_ms", [
    (86_400, 60_000),  # 24 h over 1000 points: 86.4 s -> 1m
    (604_800, 600_000),  # 7 d over 1000 points: 604.8 s -> 10m
    (2_592_000, 1_800_000),  # 30 d over 1000 points -> 30m
    (45_000, 30_000),
    (45_001, 60_000),
    (5_000_000_000, 31_536_000_000),
])
def test_round_interval_follows_grafanas_table(raw_ms, rounded_ms):
    assert round_interval(raw_ms) == rounded_ms


@pytest.mark.parametrize("ms, text", [(60_000, "1m"), (90_000, "1m"), (86_400_000, "1d"), (43_200_000, "12h"),
                                      (500, "500ms"), (15_000, "15s")])
def test_format_interval(ms, text):
    assert format_interval(ms) == text


def test_interval_never_below_the_minimum():
    one_hour = TimeRange(NOW - 3_600_000, NOW)
    assert calculate_interval(one_hour, 1000, min_interval_ms=60_000) == 60_000
    assert calculate_interval(RANGE, 1000, min_interval_ms=60_000) == 60_000
    assert calculate_interval(TimeRange(NOW - 7 * DAY, NOW), 1000, 60_000) == 600_000


def test_relative_times():
    assert parse_time("now", NOW) == NOW
    assert parse_time("now-6h", NOW) == NOW - 6 * 3_600_000
    assert parse_time(str(NOW - 5), NOW) == NOW - 5


def test_single_value_escape_keeps_numbers_and_escapes_regex_characters():
    assert influx_regular_escape("lab-1") == "lab-1"
    assert influx_regular_escape("12.5") == "12.5"  # parseFloat reads a number: left alone
    assert influx_regular_escape("a/b") == r"a\/b"
    assert escape_regex("(x)") == r"\(x\)"


def test_range_s_is_the_ranges_length_in_whole_seconds_so_a_switch_becomes_a_constant_comparison():
    q = 'SELECT mean("pm25") FROM "pm" WHERE $timeFilter AND $__range_s <= 172800 GROUP BY time($__interval)'
    assert "AND 86400 <= 172800 GROUP BY time(1m)" in expand(q, ctx())


@pytest.mark.parametrize("query, on, off, example", [
    ("WHERE $__range_s <= 172800", (1, 172800), (172801,), 172800),
    ("WHERE $__range_s > 172800 AND $__range_s <= 2592000", (172801, 2592000), (172800, 2592001), 2592000),
    ("WHERE ${__range_s} > 2592000", (2592001, 10**9), (2592000,), 2592001),
    ("WHERE $__range_s >= 10 AND $__range_s < 20", (10, 19), (9, 20), 19),
    ("WHERE $__range_s > 20 AND $__range_s < 10", (), (5, 15, 25), None),
], ids=["raw", "hourly", "daily (braced)", "inclusive lower bound", "never on"])
def test_range_switch_reads_the_range_lengths_a_query_is_on_for(query, on, off, example):
    switch = range_switch(query)
    assert switch is not None
    assert all(switch.on(s) for s in on) and not any(switch.on(s) for s in off)
    assert switch.example_span_s() == example


def test_a_query_without_a_range_switch_has_none():
    assert range_switch('SELECT last("pm25") FROM "pm" WHERE $timeFilter AND $__range_ms > 0') is None
