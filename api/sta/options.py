"""Query options of the request-data class: ``$top $skip $count $orderby $select $expand
$filter`` (with ``$expand`` items carrying their own options, to any depth up to
:data:`MAX_EXPAND_DEPTH`), plus ``$skiptoken``, the opaque continuation our nextLinks carry.

Pure: the query string's pairs in, an :class:`Options` tree out, or a 400/501 error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from api.sta import filter as sta_filter
from api.sta.errors import bad_request, not_implemented

DEFAULT_TOP = 100
MAX_TOP = 10_000
#: The largest ``$skip`` on Observations paged by time (InfluxDB reads the skipped rows too).
MAX_SKIP = 1_000_000
MAX_EXPAND_DEPTH = 8
MAX_EXPAND_ITEMS = 32
KNOWN = ("$top", "$skip", "$count", "$orderby", "$select", "$expand", "$filter", "$skiptoken")
#: Options of the standard (or OData) we do not implement: 501.
UNSUPPORTED = ("$resultFormat", "$search", "$format", "$apply", "$compute", "$levels")


@dataclass(slots=True)
class Expand:
    path: list[str]  # navigation properties, e.g. ["Datastreams", "Observations"]
    options: Options


@dataclass(slots=True)
class Options:
    top: int | None = None  # None: the default (DEFAULT_TOP)
    skip: int = 0
    count: bool = False
    orderby: list[tuple[Any, str]] = field(default_factory=list)
    select: list[str] | None = None
    expand: list[Expand] = field(default_factory=list)
    filter: Any = None
    skiptoken: str | None = None
    raw: dict[str, str] = field(default_factory=dict)  # as given (nextLinks repeat them)

    @property
    def limit(self) -> int:
        return min(self.top if self.top is not None else DEFAULT_TOP, MAX_TOP)


def _int(name: str, text: str) -> int:
    """A non-negative integer, however long (one over 40 digits as 10**40: no int() of thousands)."""
    digits = text.strip()
    if not re.fullmatch(r"\d+", digits, re.ASCII):
        raise bad_request(f"{name} must be a non-negative integer")
    return int(digits) if len(digits) <= 40 else 10**40


def _split(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses and quotes."""
    out, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request("unbalanced parentheses in $expand")
        elif not quoted and depth == 0 and ch == sep:
            out.append(text[start:i])
            start = i + 1
    if depth != 0 or quoted:
        raise bad_request("unbalanced parentheses or quotes in $expand")
    out.append(text[start:])
    return out


def parse(pairs: list[tuple[str, str]], depth: int = 0) -> Options:
    opts = Options()
    seen: set[str] = set()
    for name, value in pairs:
        if not name.startswith("$"):
            if depth > 0:
                raise bad_request("options inside $expand start with $, as in $top=1")
            continue  # not ours (cache busters, …)
        if name in seen:
            raise bad_request(f"{name} given twice")
        seen.add(name)
        if name in UNSUPPORTED:
            raise not_implemented(f"{name} is not supported (docs/sensorthings.md)")
        if name not in KNOWN:
            raise bad_request("unknown query option (the supported ones are in docs/sensorthings.md)")
        opts.raw[name] = value
        if name == "$top":
            opts.top = min(_int(name, value), MAX_TOP)  # the server maximum wins
        elif name == "$skip":
            opts.skip = _int(name, value)  # not clamped: Observations refuse one over MAX_SKIP (engine)
        elif name == "$count":
            if value not in ("true", "false"):
                raise bad_request("$count must be true or false")
            opts.count = value == "true"
        elif name == "$orderby":
            opts.orderby = sta_filter.parse_orderby(value)
        elif name == "$select":
            opts.select = [s.strip() for s in value.split(",")]
            if not all(re.fullmatch(r"[A-Za-z@][A-Za-z0-9_.@/]*", s) for s in opts.select):
                raise bad_request("$select takes comma-separated property names")
            if any("/" in s for s in opts.select):
                raise not_implemented("$select of a path inside a property")
        elif name == "$filter":
            opts.filter = sta_filter.parse_filter(value)
        elif name == "$skiptoken":
            if not re.fullmatch(r"[0-9a-z.:-]{1,80}", value):
                raise bad_request("$skiptoken must be copied from an @iot.nextLink")
            opts.skiptoken = value
        elif name == "$expand":
            opts.expand = parse_expand(value, depth)
    return opts


def parse_expand(text: str, depth: int = 0) -> list[Expand]:
    if depth >= MAX_EXPAND_DEPTH:
        raise bad_request(f"$expand is nested deeper than {MAX_EXPAND_DEPTH} levels")
    if len(text) > sta_filter.MAX_CHARS:
        raise bad_request(f"$expand is longer than {sta_filter.MAX_CHARS} characters")
    items = [i.strip() for i in _split(text, ",")]
    if len(items) > MAX_EXPAND_ITEMS:
        raise bad_request(f"$expand lists more than {MAX_EXPAND_ITEMS} items")
    out = []
    for item in items:
        m = re.fullmatch(r"([A-Za-z]+(?:/[A-Za-z]+)*)\s*(?:\((.*)\))?", item, re.DOTALL)
        if not m:
            raise bad_request("$expand takes navigation properties, e.g. Thing,Observations($top=1)")
        pairs = []
        if m.group(2) is not None and m.group(2).strip():
            for opt in _split(m.group(2), ";"):
                name, eq, value = opt.strip().partition("=")
                if not eq:
                    raise bad_request("options inside $expand are written as $name=value")
                pairs.append((name.strip(), value.strip()))
        path = m.group(1).split("/")
        options = parse(pairs, depth + len(path))  # depth >= 1 here
        # Datastreams/Observations: the options belong to the last hop; each hop before it expands
        # the rest of the path (its `raw`, so an expanded collection's nextLink expands it too).
        inner = f"({m.group(2)})" if m.group(2) is not None and m.group(2).strip() else ""
        for i in range(len(path) - 1, 0, -1):
            rest = "/".join(path[i:]) + inner
            options = Options(expand=[Expand([path[i]], options)], raw={"$expand": rest})
        out.append(Expand(path[:1], options))
    return _merged(out, depth)


def _merged(items: list[Expand], depth: int) -> list[Expand]:
    """One item per navigation property: ``Datastreams($top=2),Datastreams/Observations`` (as
    pyCIOT writes it) is ``Datastreams($top=2;$expand=Observations)``. The same option given
    twice with different values is a 400."""
    by_name: dict[str, list[Expand]] = {}
    for item in items:
        by_name.setdefault(item.path[0], []).append(item)
    out = []
    for name, same in by_name.items():
        if len(same) == 1:
            out.append(same[0])
            continue
        raw: dict[str, str] = {}
        expands = []
        for item in same:
            for key, value in item.options.raw.items():
                if key == "$expand":
                    expands.append(value)
                elif raw.setdefault(key, value) != value:
                    raise bad_request("$expand names a navigation property twice with different options")
        if expands:
            raw["$expand"] = ",".join(expands)
        out.append(Expand([name], parse(list(raw.items()), depth + 1)))
    return out


def without_count(opts: Options) -> Options:
    """``opts`` with ``$count`` off (a copy: an ``$expand``'s options serve every parent)."""
    return replace(opts, count=False)
