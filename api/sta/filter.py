"""``$filter`` and ``$orderby``: a lark grammar, an AST of tuples, an evaluator on catalogue
entities and a compiler of Observation filters into InfluxQL fragments (built only by
civicair/influxql.py).

AST nodes::

    ("lit", value)            str | int | float | bool | None | datetime | Geometry
    ("path", ("Thing", "properties", "station"))
    ("call", name, (args…))
    ("op", "eq" | "and" | "add" | …, left, right)
    ("not", node) | ("neg", node)

Hostile input is bounded before and after parsing: length, literal size, nesting depth
and node count (400), unknown functions (501).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, VisitError

from api.sta.errors import bad_request, not_implemented

MAX_CHARS = 4000
MAX_LITERAL = 1000
MAX_DEPTH = 24
MAX_NODES = 400

GRAMMAR = r"""
?filter: expr
orderby: order_item ("," order_item)*
order_item: expr [DIRECTION]

?expr: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: not_expr (AND not_expr)*
?not_expr: NOT not_expr -> not_
         | cmp
?cmp: add (CMPOP add)?
?add: mul (ADDOP mul)*
?mul: unary (MULOP unary)*
?unary: "-" unary -> neg
      | atom
?atom: literal
     | call
     | path
     | "(" expr ")"
call: NAME "(" [expr ("," expr)*] ")"
path: NAME ("/" NAME)*
literal: STRING -> string
       | DATETIME -> datetime
       | TIMEOFDAY -> timeofday
       | NUMBER -> number
       | GEOGRAPHY -> geography
       | TRUE -> true
       | FALSE -> false
       | NULL -> null

OR.3: /or\b/
AND.3: /and\b/
NOT.3: /not\b/
TRUE.3: /true\b/
FALSE.3: /false\b/
NULL.3: /null\b/
DIRECTION.3: /(asc|desc)\b/i
CMPOP.3: /(eq|ne|gt|ge|lt|le)\b/
ADDOP.3: /(add|sub)\b/
MULOP.3: /(mul|div|mod)\b/
DATETIME.4: /\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?/
TIMEOFDAY.4: /\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?/
NUMBER.2: /\d+(\.\d+)?([eE][+-]?\d+)?/
GEOGRAPHY.4: /geography'[^']*'/i
STRING: /'([^']|'')*'/
NAME: /[A-Za-z_@][A-Za-z0-9_.@]*/
%import common.WS
%ignore WS
"""


@dataclass(frozen=True, slots=True)
class Geometry:
    kind: str  # "Point" | "Polygon"
    coords: tuple  # Point: (x, y); Polygon: ((x, y), …) outer ring


class Multi(list):
    """Several values reached through a collection (``Datastreams/name``): a comparison holds
    if it holds for any of them."""


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request("a date-time literal is not a valid date") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"\s*({_NUM})\s+({_NUM})\s*")


def parse_wkt(text: str) -> Geometry:
    m = re.fullmatch(r"\s*(POINT|POLYGON)\s*\((.*)\)\s*", text, re.IGNORECASE | re.DOTALL)
    if not m:
        raise not_implemented("geography literals: only POINT(lon lat) and POLYGON((lon lat, …))")
    kind, body = m.group(1).upper(), m.group(2)
    try:
        if kind == "POINT":
            pair = _PAIR.fullmatch(body)
            if not pair:
                raise ValueError
            return Geometry("Point", (float(pair.group(1)), float(pair.group(2))))
        ring = re.fullmatch(r"\s*\((.*)\)\s*", body, re.DOTALL)
        if not ring or "(" in ring.group(1):
            raise not_implemented("POLYGON with holes or several rings")
        pts = []
        for part in ring.group(1).split(","):
            pair = _PAIR.fullmatch(part)
            if not pair:
                raise ValueError
            pts.append((float(pair.group(1)), float(pair.group(2))))
        if len(pts) < 4 or pts[0] != pts[-1]:
            raise ValueError
        return Geometry("Polygon", tuple(pts))
    except ValueError:
        raise bad_request("a geography literal is not valid WKT") from None


@v_args(inline=True)
class _ToAst(Transformer):
    def string(self, tok: Token):
        return ("lit", str(tok)[1:-1].replace("''", "'"))

    def number(self, tok: Token):
        text = str(tok)
        value = float(text) if any(c in text for c in ".eE") else int(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_request("number out of range")
        return ("lit", value)

    def datetime(self, tok: Token):
        return ("lit", _parse_time(str(tok) if "T" in str(tok) else str(tok) + "T00:00:00Z"))

    def timeofday(self, tok: Token):
        hms, _, fraction = str(tok).partition(".")
        h, m, *sec = (int(x) for x in hms.split(":"))
        try:
            return ("lit", dtime(h, m, sec[0] if sec else 0, int((fraction + "000000")[:6])))
        except ValueError:
            raise bad_request("a time-of-day literal is not a valid time") from None

    def geography(self, tok: Token):
        return ("lit", parse_wkt(str(tok)[len("geography'"):-1]))

    def true(self, _tok):
        return ("lit", True)

    def false(self, _tok):
        return ("lit", False)

    def null(self, _tok):
        return ("lit", None)

    def path(self, *names: Token):
        return ("path", tuple(str(n) for n in names))

    def call(self, name: Token, *args):
        return ("call", str(name).lower(), tuple(a for a in args if a is not None))

    def neg(self, node):
        return ("neg", node)

    def not_(self, _tok, node):
        return ("not", node)

    def _chain(self, *items):
        node = items[0]
        for i in range(1, len(items), 2):
            node = ("op", str(items[i]), node, items[i + 1])
        return node

    or_expr = and_expr = cmp = add = mul = _chain

    def order_item(self, node, direction=None):
        # any case: frost-sta-client writes DESC (FROST's server takes it)
        return (node, str(direction).lower() if direction else "asc")

    def orderby(self, *items):
        return list(items)


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, start=["filter", "orderby"], parser="lalr", maybe_placeholders=True)


def _check_text(text: str, what: str) -> None:
    if len(text) > MAX_CHARS:
        raise bad_request(f"{what} is longer than {MAX_CHARS} characters")
    depth = level = 0
    for ch in text:
        level += ch == "("
        level -= ch == ")"
        depth = max(depth, level)
    if depth > MAX_DEPTH:
        raise bad_request(f"{what} is nested deeper than {MAX_DEPTH} levels")
    if text.count(" not ") + text.startswith("not ") > MAX_DEPTH:
        raise bad_request(f"{what} is nested deeper than {MAX_DEPTH} levels")


def _check_tree(node: Any, depth: int = 0, count: list[int] | None = None) -> None:
    count = count if count is not None else [0]
    count[0] += 1
    if depth > MAX_DEPTH * 2 or count[0] > MAX_NODES:
        raise bad_request(f"expression too complex (at most {MAX_NODES} terms, nesting {MAX_DEPTH})")
    kind = node[0]
    if kind == "lit":
        value = node[1]
        if isinstance(value, str) and len(value) > MAX_LITERAL:
            raise bad_request(f"a string literal is longer than {MAX_LITERAL} characters")
        if isinstance(value, Geometry) and len(value.coords) > MAX_LITERAL:
            raise bad_request(f"a geography literal has more than {MAX_LITERAL} points")
        if isinstance(value, int) and abs(value) > 2**63:
            raise bad_request("an integer literal is out of range")
        if isinstance(value, float) and abs(value) > 1e300:
            raise bad_request("a number literal is out of range")
    elif kind == "call":
        for a in node[2]:
            _check_tree(a, depth + 1, count)
    elif kind == "op":
        _check_tree(node[2], depth + 1, count)
        _check_tree(node[3], depth + 1, count)
    elif kind in ("not", "neg"):
        _check_tree(node[1], depth + 1, count)


def _parse(text: str, start: str, what: str) -> Any:
    _check_text(text, what)
    try:
        tree = _parser().parse(text, start=start)
        ast = _ToAst().transform(tree)
    except VisitError as exc:
        if hasattr(exc.orig_exc, "status"):
            raise exc.orig_exc from None
        raise bad_request(f"{what} could not be parsed") from None
    except LarkError as exc:
        where = getattr(exc, "column", None)
        at = f" near column {where}" if isinstance(where, int) and where > 0 else ""
        raise bad_request(f"{what} could not be parsed{at} (grammar: docs/sensorthings.md)") from None
    except RecursionError:
        raise bad_request(f"{what} is nested too deeply") from None
    return ast


def parse_filter(text: str) -> Any:
    ast = _parse(text, "filter", "$filter")
    _check_tree(ast)
    check_functions(ast)
    check_types(ast)
    return fold_constants(ast)


def parse_orderby(text: str) -> list[tuple[Any, str]]:
    items = _parse(text, "orderby", "$orderby")
    for node, _ in items:
        _check_tree(node)
        check_functions(node)
    return items


# -- functions ----------------------------------------------------------------------------

def _geom(value: Any) -> Geometry | None:
    """The geometry of a literal, a GeoJSON geometry or a GeoJSON Feature; None where there is
    none (a station that published no position has a Feature with ``"geometry": null``, see
    api/sta/model.py ``unlocated``): every spatial function of None is None, so a condition on
    it is false (``geo.distance(…) lt x`` included), never an error."""
    if isinstance(value, Geometry):
        return value
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if isinstance(value, dict) and value.get("type") == "Point":
        x, y = value.get("coordinates", (None, None))[:2]
        if isinstance(x, int | float) and isinstance(y, int | float):
            return Geometry("Point", (float(x), float(y)))
    if isinstance(value, dict) and value.get("type") == "Polygon":
        return Geometry("Polygon", tuple(tuple(p) for p in value["coordinates"][0]))
    return None


def _in_polygon(pt: tuple[float, float], ring: tuple) -> bool:
    x, y = pt
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def _within(a: Any, b: Any) -> bool | None:
    ga, gb = _geom(a), _geom(b)
    if ga is None or gb is None:
        return None
    if ga.kind == "Point" and gb.kind == "Polygon":
        return _in_polygon(ga.coords, gb.coords)
    if ga.kind == "Point" and gb.kind == "Point":
        return ga.coords == gb.coords
    raise not_implemented("spatial functions on polygons against polygons")


def _intersects(a: Any, b: Any) -> bool | None:
    ga = _geom(a)
    if ga is not None and ga.kind == "Polygon":
        a, b = b, a
    return _within(a, b)


def _distance(a: Any, b: Any) -> float | None:
    ga, gb = _geom(a), _geom(b)
    if ga is None or gb is None:
        return None
    if ga.kind != "Point" or gb.kind != "Point":
        raise not_implemented("geo.distance between points only")
    return math.dist(ga.coords, gb.coords)


def _str(f):
    return lambda *a: f(*a) if all(isinstance(x, str) for x in a) else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}T", value):
        return _parse_time(value.split("/")[-1])
    return None


def _part(attr: str):
    def get(value: Any):
        t = value if isinstance(value, dtime) and attr in _TIME_OF_DAY_PARTS else _time(value)
        return getattr(t, attr) if t is not None else None
    return get


#: What hour(), minute(), second() and fractionalseconds() also read from a time of day (OData).
_TIME_OF_DAY_PARTS = frozenset({"hour", "minute", "second", "microsecond"})


def _date(value: Any) -> datetime | None:
    """The day of a date-time, as midnight in its own offset (compared with date literals,
    which are midnight UTC)."""
    t = _time(value)
    return datetime(t.year, t.month, t.day, tzinfo=t.tzinfo) if t is not None else None


def _time_of_day(value: Any) -> dtime | None:
    t = _time(value)
    return t.time() if t is not None else None


def _fraction(value: Any) -> float | None:
    micro = _part("microsecond")(value)
    return micro / 1e6 if micro is not None else None


def _offset_minutes(value: Any) -> int | None:
    t = _time(value)
    offset = t.utcoffset() if t is not None else None
    return int(offset.total_seconds() // 60) if offset is not None else None


#: OData's ``mindatetime()`` and ``maxdatetime()``.
MIN_DATETIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _num(f):
    return lambda x: f(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


FUNCTIONS: dict[str, tuple[int, Any]] = {
    "substringof": (2, _str(lambda a, b: a in b)),
    "contains": (2, _str(lambda a, b: b in a)),
    "startswith": (2, _str(lambda a, b: a.startswith(b))),
    "endswith": (2, _str(lambda a, b: a.endswith(b))),
    "length": (1, _str(len)),
    "indexof": (2, _str(lambda a, b: a.find(b))),
    "tolower": (1, _str(str.lower)),
    "toupper": (1, _str(str.upper)),
    "trim": (1, _str(str.strip)),
    "concat": (2, _str(lambda a, b: a + b)),
    "year": (1, _part("year")), "month": (1, _part("month")), "day": (1, _part("day")),
    "hour": (1, _part("hour")), "minute": (1, _part("minute")), "second": (1, _part("second")),
    "fractionalseconds": (1, _fraction), "date": (1, _date), "time": (1, _time_of_day),
    "totaloffsetminutes": (1, _offset_minutes), "now": (0, lambda: datetime.now(UTC).replace(microsecond=0)),
    "mindatetime": (0, lambda: MIN_DATETIME), "maxdatetime": (0, lambda: MAX_DATETIME),
    "round": (1, _num(round)), "floor": (1, _num(math.floor)), "ceiling": (1, _num(math.ceil)),
    "geo.distance": (2, _distance),
    "geo.intersects": (2, _intersects), "st_intersects": (2, _intersects),
    "st_within": (2, _within), "st_contains": (2, lambda a, b: _within(b, a)),
    "st_equals": (2, lambda a, b: _geom(a) == _geom(b) if _geom(a) and _geom(b) else None),
    "st_disjoint": (2, lambda a, b: None if (r := _intersects(a, b)) is None else not r),
}
#: Functions of the standard we do not implement: 501, not 400.
UNSUPPORTED = frozenset({"substring", "geo.length", "st_touches", "st_overlaps", "st_crosses", "st_relate"})
#: Functions of a date-time: (result type, see :func:`check_types`).
DATE_FUNCTIONS = {"year": "number", "month": "number", "day": "number", "hour": "number", "minute": "number",
                  "second": "number", "fractionalseconds": "number", "totaloffsetminutes": "number",
                  "date": "datetime", "time": "time"}
#: Functions without arguments, evaluated once per request (:func:`fold_constants`).
CONSTANTS = frozenset({"now", "mindatetime", "maxdatetime"})


def check_functions(node: Any) -> None:
    kind = node[0]
    if kind == "call":
        name, args = node[1], node[2]
        if name in UNSUPPORTED:
            raise not_implemented(f"function {name}() is not supported (docs/sensorthings.md)")
        if name not in FUNCTIONS:
            raise not_implemented("unknown function (the supported ones are in docs/sensorthings.md)")
        if len(args) != FUNCTIONS[name][0]:
            raise bad_request(f"{name}() takes {FUNCTIONS[name][0]} argument(s)")
        for a in args:
            check_functions(a)
    elif kind == "op":
        check_functions(node[2])
        check_functions(node[3])
    elif kind in ("not", "neg"):
        check_functions(node[1])


def fold_constants(node: Any) -> Any:
    """``now()``, ``mindatetime()``, ``maxdatetime()`` as date-time literals: one instant for
    the whole request, and literals the Observations compiler turns into InfluxQL bounds."""
    kind = node[0]
    if kind == "call" and node[1] in CONSTANTS:
        return ("lit", FUNCTIONS[node[1]][1]())
    if kind == "call":
        return ("call", node[1], tuple(fold_constants(a) for a in node[2]))
    if kind == "op":
        return ("op", node[1], fold_constants(node[2]), fold_constants(node[3]))
    if kind in ("not", "neg"):
        return (kind, fold_constants(node[1]))
    return node


def _literal_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, dtime):
        return "time"
    if isinstance(value, Geometry):
        return "geo"
    return None  # null compares with anything


def check_types(node: Any, path_types: dict[tuple[str, ...], str] | None = None) -> str | None:
    """The type of ``node`` where it is known (None where not: paths not in ``path_types``,
    most functions); 400 where two known types cannot meet (``month(phenomenonTime) eq 'x'``,
    ``date(result)``, ``'a' add 1``): such a filter is malformed, not merely empty."""
    kind = node[0]
    if kind == "lit":
        return _literal_type(node[1])
    if kind == "path":
        return (path_types or {}).get(node[1])
    if kind == "call":
        types = [check_types(a, path_types) for a in node[2]]
        name = node[1]
        if name in DATE_FUNCTIONS:
            takes = ("datetime", "time") if name in ("hour", "minute", "second", "fractionalseconds") \
                else ("datetime",)
            if types[0] is not None and types[0] not in takes:
                raise bad_request(f"{name}() takes a {' or '.join(takes)}, not a {types[0]}")
            return DATE_FUNCTIONS[name]
        return "datetime" if name in CONSTANTS else None
    if kind == "not":
        check_types(node[1], path_types)
        return "bool"
    if kind == "neg":
        t = check_types(node[1], path_types)
        if t not in (None, "number"):
            raise bad_request(f"unary minus takes a number, not a {t}")
        return "number"
    op, a, b = node[1], check_types(node[2], path_types), check_types(node[3], path_types)
    if op in ("and", "or"):
        return "bool"
    if op in _CMP:
        if a is not None and b is not None and a != b:
            raise bad_request(f"a {a} is compared with a {b}")
        return "bool"
    if a == "datetime" and b in (None, "number") and op in ("add", "sub"):
        return "datetime"  # plus or minus seconds
    for t in (a, b):
        if t not in (None, "number"):
            raise bad_request(f"{op} takes numbers, not a {t}")
    return "number" if a == b == "number" else None


# -- evaluation on entities ----------------------------------------------------------------

_CMP = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}
COMPARISONS = frozenset(_CMP)
_ARITH = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b if b else None, "mod": lambda a, b: a % b if b else None,
}


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    if isinstance(a, dtime) or isinstance(b, dtime):
        return (a, b) if isinstance(a, dtime) and isinstance(b, dtime) and (a.tzinfo is None) == \
            (b.tzinfo is None) else None
    if isinstance(a, datetime) or isinstance(b, datetime):
        ta, tb = _time(a), _time(b)
        return (ta, tb) if ta is not None and tb is not None else None
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return a, b
    if type(a) is type(b) and isinstance(a, str | bool):
        return a, b
    return None


def compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, Multi):
        return any(compare(op, x, b) for x in a)
    if isinstance(b, Multi):
        return any(compare(op, a, x) for x in b)
    if a is None or b is None:
        return (a is None and b is None) if op == "eq" else (a is not None or b is not None) if op == "ne" \
            else False
    pair = _comparable(a, b)
    if pair is None:
        return op == "ne"
    return bool(_CMP[op](*pair))


def evaluate(node: Any, resolve) -> Any:
    """Value of ``node``; ``resolve(path_tuple)`` gives a path's value (or a Multi)."""
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        return resolve(node[1])
    if kind == "not":
        value = logical(evaluate(node[1], resolve))
        return None if value is None else not value
    if kind == "neg":
        v = evaluate(node[1], resolve)
        return -v if isinstance(v, int | float) and not isinstance(v, bool) else None
    if kind == "call":
        arity, fn = FUNCTIONS[node[1]]
        args = [evaluate(a, resolve) for a in node[2]]
        if any(isinstance(a, Multi) for a in args):
            return Multi(fn(*combo) for combo in _combos(args))
        return fn(*args)
    op, left, right = node[1], node[2], node[3]
    if op in ("and", "or"):
        # OData's null as unknown (URL conventions 5.1.1.3): false and null is false, true or
        # null true, any other mix null; not null is null. So ``not st_within(location, …)``
        # does not select a station that published no position (its geometry is null).
        stop = op == "or"  # the value that decides alone
        a = logical(evaluate(left, resolve))
        if a is stop:
            return stop
        b = logical(evaluate(right, resolve))
        if b is stop:
            return stop
        return None if a is None or b is None else not stop
    a, b = evaluate(left, resolve), evaluate(right, resolve)
    if op in _CMP:
        return compare(op, a, b)
    if isinstance(a, Multi) or isinstance(b, Multi):
        return Multi(_arith(op, x, y) for x, y in _combos([a, b]))
    return _arith(op, a, b)


def _arith(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, datetime) and isinstance(b, int | float) and op in ("add", "sub"):
        try:
            return a + timedelta(seconds=b if op == "add" else -b)
        except OverflowError:  # beyond years 1-9999
            return None
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        try:
            return _ARITH[op](a, b)
        except OverflowError:
            return None
    return None


def _combos(args: list[Any]) -> list[tuple]:
    out: list[tuple] = [()]
    for a in args:
        values = list(a) if isinstance(a, Multi) else [a]
        out = [c + (v,) for c in out for v in values][:10_000]
    return out


def logical(value: Any) -> bool | None:
    """A value as a condition: True, False or None (unknown: null, or not a Boolean). Through a
    collection (Multi), true if true for any member, false if false for every one."""
    if isinstance(value, Multi):
        members = [logical(v) for v in value]
        return True if True in members else None if None in members else False
    return value if isinstance(value, bool) else None


def truthy(value: Any) -> bool:
    if isinstance(value, Multi):
        return any(truthy(v) for v in value)
    return value is True


def paths(node: Any) -> list[tuple[str, ...]]:
    kind = node[0]
    if kind == "path":
        return [node[1]]
    if kind == "call":
        return [p for a in node[2] for p in paths(a)]
    if kind == "op":
        return paths(node[2]) + paths(node[3])
    if kind in ("not", "neg"):
        return paths(node[1])
    return []


def conjuncts(node: Any) -> list[Any]:
    if node[0] == "op" and node[1] == "and":
        return conjuncts(node[2]) + conjuncts(node[3])
    return [node]
