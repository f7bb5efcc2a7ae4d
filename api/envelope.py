"""The ``{meta, results}`` envelope and the fast JSON response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.responses import Response

from api.settings import ApiSettings
from firmware_bridge import contract

UNITS = dict(contract.MEASURED_FIELDS) | {"pm25": "µg/m³"}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def envelope(settings: ApiSettings, results: list, query: dict[str, Any], **extra: Any) -> dict:
    meta = {
        "licence": settings.licence,
        "attribution": settings.attribution,
        "units": UNITS,
        "query": query,
        "found": len(results),
        **extra,
    }
    return {"meta": meta, "results": results}


def iso(epoch_s: int | float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
