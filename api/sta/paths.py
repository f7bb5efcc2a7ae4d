"""Resource paths: ``Things(1)/Datastreams(2)/Observations``, ``…/name/$value``, ``…/$ref``.

Pure: a path string in, a list of :class:`Segment` out (or a 400/404 error). Which
segments are valid after which is decided while resolving (api/sta/engine.py), where the
entity types are known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from api.sta.errors import bad_request, not_found
from api.sta.ids import MAX_ID

MAX_SEGMENTS = 16
_SEGMENT = re.compile(r"(?P<name>[A-Za-z@][A-Za-z0-9_.@]*|\$value|\$ref)(?:\((?P<key>[^()]*)\))?\Z")


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    key: int | None = None


def parse_key(text: str) -> int:
    if not re.fullmatch(r"\d{1,40}", text):
        raise bad_request("entity ids are integers, as in Things(1)")
    value = int(text)
    if value > MAX_ID:
        raise not_found("no such entity")
    return value


def parse_path(path: str) -> list[Segment]:
    parts = [p for p in path.strip("/").split("/")]
    if len(parts) > MAX_SEGMENTS:
        raise bad_request(f"a resource path has at most {MAX_SEGMENTS} segments")
    out = []
    for part in parts:
        m = _SEGMENT.match(part)
        if not m:
            raise not_found("no such resource (see the service root for the entity sets)")
        key = m.group("key")
        out.append(Segment(m.group("name"), parse_key(key) if key is not None else None))
    return out
