"""Grafana's expansion of an InfluxQL query, as Grafana 10/11 does it. Pure functions.

Two stages, in Grafana's order:

1. the browser's template service (``templateSrv.replace`` with the InfluxDB
   datasource's ``interpolateQueryExpr``) replaces dashboard variables
   (``$station``, ``${station}``, ``[[station]]``, ``${station:regex}``) and the
   global time variables (``$__from``, ``$__to``, ``${__from:date:seconds}``,
   ``$__range``, ``$__range_s``, ``$__range_ms``); it leaves ``$__interval``,
   ``$__interval_ms`` and ``$timeFilter`` alone;
2. the InfluxDB backend (``pkg/tsdb/influxdb/influxql/models/query.go``, ``Build``)
   replaces ``$timeFilter`` with ``time >= <from>ms and time <= <to>ms``, then
   ``$interval``, ``$__interval_ms`` and ``$__interval``, in that order.

``$__interval`` is Grafana's: the time range divided by the panel's data points,
rounded to a "nice" length (:func:`round_interval`, the table of Grafana's
``gtime``), never below the panel's or the datasource's minimum interval.

Anything that is not a known variable is left as it is, as Grafana leaves it;
:func:`unresolved` lists what is left, so the check can report it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
             "M": 2_592_000_000, "y": 31_536_000_000}
_DURATION_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)\Z")
_RELATIVE_RE = re.compile(r"now(?:-(\d+)(ms|s|m|h|d|w|M|y))?\Z")

#: Grafana's templateSrv variable syntax: $name, [[name(:format)]], ${name(.path)(:format)}.
VARIABLE_RE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")

#: Expanded by the backend, not by the template service.
BACKEND_MACROS = ("timeFilter", "interval", "__interval", "__interval_ms")


class MacroError(ValueError):
    pass


def parse_duration_ms(text: str) -> int:
    """``30s``, ``1m``, ``24h``, ``7d`` … in milliseconds (``>1m`` as Grafana writes a minimum)."""
    m = _DURATION_RE.match(text.strip().lstrip(">"))
    if not m:
        raise MacroError(f"not a duration: {text!r}")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_time(text: str, now_ms: int) -> int:
    """A dashboard time (``now``, ``now-6h``, or epoch milliseconds) in epoch milliseconds."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    m = _RELATIVE_RE.match(text)
    if not m:
        raise MacroError(f"time {text!r} is not 'now', 'now-<n><unit>' or epoch milliseconds")
    return now_ms - (int(m.group(1)) * _UNITS_MS[m.group(2)] if m.group(1) else 0)


@dataclass(frozen=True, slots=True)
class TimeRange:
    from_ms: int
    to_ms: int

    @classmethod
    def relative(cls, time_from: str, time_to: str = "now", now_ms: int | None = None) -> TimeRange:
        now_ms = int(datetime.now(UTC).timestamp() * 1000) if now_ms is None else now_ms
        return cls(parse_time(time_from, now_ms), parse_time(time_to, now_ms))

    @property
    def span_ms(self) -> int:
        return self.to_ms - self.from_ms


# (upper bound inclusive, result), Grafana gtime roundInterval; the last step is "<".
_ROUNDING_MS: tuple[tuple[int, int], ...] = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
    (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
    (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000), (750_000, 600_000),
    (1_050_000, 900_000), (1_500_000, 1_200_000), (2_700_000, 1_800_000), (5_400_000, 3_600_000),
    (9_000_000, 7_200_000), (16_200_000, 10_800_000), (32_400_000, 21_600_000),
    (86_400_000, 43_200_000), (172_800_000, 86_400_000), (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
)


def round_interval(interval_ms: int) -> int:
    for bound, result in _ROUNDING_MS:
        if interval_ms <= bound:
            return result
    return 2_592_000_000 if interval_ms < 3_628_800_000 else 31_536_000_000


def format_interval(interval_ms: int) -> str:
    """Grafana's ``gtime.FormatInterval``: the largest whole unit (``1m``, ``12h``, ``1d``)."""
    for unit, size in (("y", _UNITS_MS["y"]), ("d", _UNITS_MS["d"]), ("h", _UNITS_MS["h"]),
                       ("m", _UNITS_MS["m"]), ("s", _UNITS_MS["s"])):
        if interval_ms >= size:
            return f"{interval_ms // size}{unit}"
    return f"{max(interval_ms, 1)}ms"


def calculate_interval(time_range: TimeRange, max_data_points: int, min_interval_ms: int = 0) -> int:
    """Grafana's interval calculator: range / data points, rounded, at least the minimum."""
    raw = time_range.span_ms // max(max_data_points, 1)
    if raw < min_interval_ms:
        return min_interval_ms
    return round_interval(raw)


# -- stage 1: template service ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False


_ESCAPE_REGEX_RE = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_SPECIAL_REGEX_RE = re.compile(r"[$^*{}\[\]'+?.()|]")
_JS_NUMBER_PREFIX_RE = re.compile(r"\s*[+-]?(\d|\.\d|Infinity)")


def escape_regex(value: str) -> str:
    """@grafana/data ``escapeRegex``."""
    return _ESCAPE_REGEX_RE.sub(lambda m: "\\" + m.group(0), value)


def influx_regular_escape(value: str) -> str:
    """The InfluxDB datasource's escape for a single-valued variable.

    Like the JavaScript original, a value that ``parseFloat`` reads as a number (it
    starts with one) is left alone; anything else is regex-escaped.
    """
    if _JS_NUMBER_PREFIX_RE.match(value):
        return value
    return escape_regex(value)


def influx_special_regex_escape(value: str) -> str:
    value = value.replace("\\", "\\\\\\\\")
    return _SPECIAL_REGEX_RE.sub(lambda m: "\\\\" + m.group(0), value)


def interpolate_query_expr(variable: Variable) -> str:
    """The InfluxDB datasource's default format for a variable in a query."""
    if not variable.multi and not variable.include_all:
        return influx_regular_escape(variable.values[0] if variable.values else "")
    escaped = [influx_special_regex_escape(v) for v in variable.values]
    return escaped[0] if len(escaped) == 1 else "|".join(escaped)


def _format(variable: Variable, fmt: str | None) -> str:
    values = list(variable.values)
    if fmt is None:
        return interpolate_query_expr(variable)
    if fmt == "raw":
        return ",".join(values)
    if fmt == "regex":
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise MacroError(f"variable format {fmt!r} is not supported by the check")


def _global_time(name: str, fmt: str | None, time_range: TimeRange) -> str | None:
    if name in ("__from", "__to"):
        ms = time_range.from_ms if name == "__from" else time_range.to_ms
        if fmt in (None, "date:millis"):
            return str(ms)
        if fmt == "date:seconds":
            return str(ms // 1000)
        if fmt in ("date", "date:iso"):
            return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        raise MacroError(f"${{{name}:{fmt}}} is not supported by the check")
    if name == "__range_ms":
        return str(time_range.span_ms)
    if name == "__range_s":
        return str(round(time_range.span_ms / 1000))
    if name == "__range":
        return f"{round(time_range.span_ms / 1000)}s"
    return None


def template_replace(text: str, variables: Mapping[str, Variable], time_range: TimeRange) -> str:
    """Stage 1: dashboard variables and global time variables, as the browser replaces them."""

    def replace(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in variables:
            return _format(variables[name], fmt)
        value = _global_time(name, fmt, time_range)
        return m.group(0) if value is None else value

    return VARIABLE_RE.sub(replace, text)


# -- stage 2: backend -----------------------------------------------------------------------


def backend_replace(text: str, time_range: TimeRange, interval_ms: int) -> str:
    """Stage 2: the InfluxDB backend's ``Build`` (same order of replacements)."""
    interval_text = format_interval(interval_ms)
    text = text.replace("$timeFilter", f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms")
    text = text.replace("$interval", interval_text)
    text = text.replace("$__interval_ms", str(interval_ms))
    return text.replace("$__interval", interval_text)


@dataclass(frozen=True, slots=True)
class Context:
    time_range: TimeRange
    interval_ms: int
    variables: Mapping[str, Variable] = field(default_factory=dict)


def expand(query: str, ctx: Context) -> str:
    return backend_replace(template_replace(query, ctx.variables, ctx.time_range), ctx.time_range,
                           ctx.interval_ms)


def referenced(text: str) -> set[str]:
    """Names of every variable the text refers to, in any of Grafana's syntaxes."""
    return {m.group(1) or m.group(2) or m.group(4) for m in VARIABLE_RE.finditer(text)}


def unresolved(expanded: str) -> set[str]:
    """Variables left in an expanded query: Grafana would send them to InfluxDB as typed."""
    return referenced(expanded)


# -- range switches ---------------------------------------------------------------------------
#: ``$__range_s <op> <seconds>`` in a query: a constant comparison once the template service
#: has put the range's length in, which InfluxDB folds (a false one reads no series at all).
#: The boards use it to switch a panel between raw readings and the rollups by range length.
_RANGE_SWITCH_RE = re.compile(r"\$(?:__range_s|\{__range_s\})\s*(<=|>=|<|>|=)\s*(\d+)")
_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b, "=": lambda a, b: a == b}


@dataclass(frozen=True, slots=True)
class RangeSwitch:
    """The ranges a query is switched on for: every ``$__range_s`` comparison it makes."""

    comparisons: tuple[tuple[str, int], ...]

    def on(self, span_s: int) -> bool:
        return all(_OPS[op](span_s, bound) for op, bound in self.comparisons)

    def example_span_s(self) -> int | None:
        """A range length [s] the query is on for (its upper edge where it has one), or None."""
        bounds = sorted({b + d for _, b in self.comparisons for d in (-1, 0, 1)})
        candidates = [b for b in reversed(bounds) if b > 0]
        return next((s for s in candidates if self.on(s)), None)


def range_switch(query: str) -> RangeSwitch | None:
    """The query's range switch, or None when it runs whatever the range."""
    found = tuple((m.group(1), int(m.group(2))) for m in _RANGE_SWITCH_RE.finditer(query))
    return RangeSwitch(found) if found else None
