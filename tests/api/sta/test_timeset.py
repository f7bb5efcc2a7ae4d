"""api/sta/timeset.py: time conditions as sets of instants, checked against the evaluator
itself on instants around every boundary (pure; hypothesis builds the conditions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from api.sta import filter as sta_filter
from api.sta import timeset

EDGES = [datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
         datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC),
         datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)]
LITERALS = [e.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for e in EDGES] + ["2026-03-01", "1900-01-01T00:00:00Z",
                                                                   "9999-01-01T00:00:00Z"]
PATH = st.sampled_from(["phenomenonTime", "resultTime"])
LEAF = st.one_of(
    st.tuples(PATH, st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]), st.sampled_from(LITERALS)).map(" ".join),
    st.tuples(PATH, st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
              st.sampled_from(["2025", "2026", "2026.5", "1e300", "-3"])).map(lambda p: f"year({p[0]}) {p[1]} {p[2]}"),
    st.tuples(PATH, st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
              st.sampled_from(["2026-01-01", "2026-03-01T12:00:00Z"])).map(lambda p: f"date({p[0]}) {p[1]} {p[2]}"),
    st.tuples(PATH, st.sampled_from(["1", "3", "12"])).map(lambda p: f"month({p[0]}) eq {p[1]}"),
    st.sampled_from(["phenomenonTime eq null", "null ne resultTime"]))
CONDITIONS = st.recursive(LEAF, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda p: f"({p[0]}) {p[1]} ({p[2]})"),
    inner.map(lambda c: f"not ({c})")), max_leaves=6)
INSTANTS = sorted({e + timedelta(microseconds=d) for e in EDGES + [datetime(2026, 3, 2, tzinfo=UTC)]
                   for d in (-1_000_000, -1, 0, 1, 1_000_000)})


def inside(cuts, t):
    return any(lo < (t, 0.5) < hi for lo, hi in cuts)  # (t, 0.5): the instant itself, between its cuts


@settings(max_examples=400, deadline=None)
@given(text=CONDITIONS)
def test_the_set_of_a_condition_is_where_it_holds_or_around_it(text):
    node = sta_filter.parse_filter(text)
    cuts, exact = timeset._time_set(node)
    for t in INSTANTS:
        holds = sta_filter.truthy(sta_filter.evaluate(node, lambda path, t=t: t))
        member = inside(cuts, t)
        assert member == holds if exact else member or not holds, (text, t, cuts)


def test_bounds_are_exact_or_flagged():
    assert timeset.time_parts(sta_filter.parse_filter("resultTime ge 2026-01-01T00:00:00.5Z")) == (
        ["time >= '2026-01-01T00:00:00Z'"], False)  # whole seconds in InfluxQL: the row test decides
    assert timeset.time_parts(sta_filter.parse_filter("resultTime lt 9999-01-01T00:00:00Z")) == ([], True)
    assert timeset.time_parts(sta_filter.parse_filter("year(resultTime) ge 1e300")) == (
        ["time >= '1970-01-01T00:00:00Z'", "time < '1970-01-01T00:00:00Z'"], True)
