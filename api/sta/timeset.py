"""Conditions on ``phenomenonTime``/``resultTime`` of Observations as InfluxQL ``time`` bounds.

Both paths mean the stored time (the window end). A condition is turned into the set of
instants where it holds, as half-open intervals between *cuts*: ``(t, 0)`` lies just before
the instant ``t``, ``(t, 1)`` just after it. ``ge t`` is ``[(t, 0), HIGH)``, ``le t`` is
``[LOW, (t, 1))``, ``eq t`` is ``[(t, 0), (t, 1))``; ``and``, ``or``, ``not`` are
intersection, union and complement, so any shape of comparisons with date-times (and of
``year()``/``date()``, which are steps of the time) is exact. One interval becomes InfluxQL
``time`` bounds (InfluxDB 1.x cannot OR time ranges); several, or a function that is not a
step (``month()``, ``hour()``, ``time()``, …), give the bounds around all of them (a superset)
and the caller evaluates the condition on each row too (api/sta/observations.py
``filtered_page``). Pure: the text comes from civicair/influxql.py.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from api.sta import filter as sta_filter
from civicair import influxql

TIME_PATHS = {("phenomenonTime",), ("resultTime",)}
_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}

Cut = tuple[datetime, int]
#: Every instant InfluxDB can store lies between these (its int64 nanoseconds, 1677-09-21T00:12:43.145224194Z
#: to 2262-04-11T23:47:16.854775806Z), so cuts beyond them are moved onto them, exactly.
LOW: Cut = (datetime(1677, 9, 21, 0, 12, 43, 145224, tzinfo=UTC), 0)
HIGH: Cut = (datetime(2262, 4, 11, 23, 47, 16, 854776, tzinfo=UTC), 0)
EVERYTHING: list[tuple[Cut, Cut]] = [(LOW, HIGH)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000


def _clamp(cut: Cut) -> Cut:
    return max(LOW, min(HIGH, cut))


def _intervals(pairs: list[tuple[Cut, Cut]]) -> list[tuple[Cut, Cut]]:
    """Sorted, disjoint, non-touching, within [LOW, HIGH)."""
    out: list[tuple[Cut, Cut]] = []
    for a, b in sorted((_clamp(a), _clamp(b)) for a, b in pairs):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _complement(s: list[tuple[Cut, Cut]]) -> list[tuple[Cut, Cut]]:
    edges = [LOW, *(c for pair in s for c in pair), HIGH]
    return _intervals(list(zip(edges[::2], edges[1::2], strict=True)))


def _intersect(x: list[tuple[Cut, Cut]], y: list[tuple[Cut, Cut]]) -> list[tuple[Cut, Cut]]:
    return _intervals([(max(a, c), min(b, d)) for a, b in x for c, d in y])


def _compare_set(op: str, low: Cut, high: Cut) -> list[tuple[Cut, Cut]]:
    """Where ``f(t) <op> c`` holds, for ``f`` a step of the time and ``c`` within its steps:
    ``low`` is the first instant with ``f(t) >= c``, ``high`` the first with ``f(t) > c``
    (equal when no step equals ``c``)."""
    sets = {"ge": [(low, HIGH)], "gt": [(high, HIGH)], "lt": [(LOW, low)], "le": [(LOW, high)],
            "eq": [(low, high)]}
    if op == "ne":
        return _complement(_intervals(sets["eq"]))
    return _intervals(sets[op])


def _year_start(year: int) -> Cut:
    return (datetime(min(max(year, 1600), 2300), 1, 1, tzinfo=UTC), 0)  # beyond: clamped anyway


def _day_start(day: int) -> Cut:
    return (_EPOCH + timedelta(days=min(max(day, -150_000), 150_000)), 0)


def _step_bounds(fn: str, c: Any) -> tuple[Cut, Cut] | None:
    """(first instant with ``fn(t) >= c``, first with ``fn(t) > c``) for the steps year() and date()."""
    if fn == "year" and isinstance(c, int | float) and not isinstance(c, bool):
        lo, hi = math.ceil(c), math.floor(c) + 1
        return _year_start(int(max(min(lo, 10**5), -10**5))), _year_start(int(max(min(hi, 10**5), -10**5)))
    if fn == "date" and isinstance(c, datetime):
        us = (c - _EPOCH) // timedelta(microseconds=1)
        return _day_start(-(-us // _DAY_US)), _day_start(us // _DAY_US + 1)
    return None


def _of_time(node: Any) -> bool:
    """``phenomenonTime``, ``resultTime`` or a date function of one of them."""
    if node[0] == "call" and node[1] in sta_filter.DATE_FUNCTIONS and len(node[2]) == 1:
        node = node[2][0]
    return node[0] == "path" and node[1] in TIME_PATHS


def _time_set(node: Any) -> tuple[list[tuple[Cut, Cut]], bool]:
    """The instants where ``node`` (over phenomenonTime/resultTime) may hold, and whether exactly."""
    kind = node[0]
    if not sta_filter.paths(node):
        return (EVERYTHING if sta_filter.truthy(sta_filter.evaluate(node, lambda p: None)) else []), True
    if kind == "not":
        inner, exact = _time_set(node[1])
        return (_complement(inner), True) if exact else (EVERYTHING, False)
    if kind == "op" and node[1] in ("and", "or"):
        (x, ex), (y, ey) = _time_set(node[2]), _time_set(node[3])
        return (_intersect(x, y) if node[1] == "and" else _intervals(x + y)), ex and ey
    if kind == "op" and node[1] in _FLIP:
        op, left, right = node[1], node[2], node[3]
        if right[0] != "lit":
            op, left, right = _FLIP[op], right, left
        if right[0] == "lit":
            c = right[1]
            if c is None and _of_time(left):
                return (EVERYTHING if op == "ne" else []), True  # a stored time is never null
            if left[0] == "path" and left[1] in TIME_PATHS and isinstance(c, datetime):
                return _compare_set(op, (c, 0), (c, 1)), True
            if left[0] == "call" and len(left[2]) == 1 and left[2][0][0] == "path" \
                    and left[2][0][1] in TIME_PATHS:
                bounds = _step_bounds(left[1], c)
                if bounds is not None:
                    return _compare_set(op, *bounds), True
    return EVERYTHING, False


_NOTHING = [influxql.time_compare(">=", _EPOCH), influxql.time_compare("<", _EPOCH)]


def time_parts(node: Any) -> tuple[list[str], bool]:
    """InfluxQL time bounds of one conjunct over phenomenonTime/resultTime; and whether they are
    exactly the conjunct (else they hold wherever it does, and it is evaluated row by row)."""
    s, exact = _time_set(node)
    if not s:
        return list(_NOTHING), True
    if len(s) > 1:
        s, exact = [(s[0][0], s[-1][1])], False
    (lo, hi), = s
    if lo[1] == 0 and hi == (lo[0], 1) and not lo[0].microsecond:
        return [influxql.time_compare("=", lo[0])], exact
    parts = []
    if lo != LOW:
        t, after = lo
        if t.microsecond:  # InfluxQL time literals here are whole seconds: the second before
            t, after, exact = t.replace(microsecond=0), 0, False
        if (t, after) > LOW:
            parts.append(influxql.time_compare(">" if after else ">=", t))
    if hi != HIGH:
        t, after = hi
        if t.microsecond:  # the second after
            t, after, exact = t.replace(microsecond=0) + timedelta(seconds=1), 0, False
        if (t, after) < HIGH:
            parts.append(influxql.time_compare("<=" if after else "<", t))
    return parts, exact
