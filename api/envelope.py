"""The ``{meta, results}`` envelope and the fast JSON response."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse as _StarletteJSONResponse

from api.settings import ApiSettings
from civicair.schema import contract

#: Units of every stored field and public parameter name.
UNITS: dict[str, str] = dict(contract.MEASURED_FIELDS) | {
    "pm25": "µg/m³",
    "pm25_raw": "µg/m³",
    "pm1": "µg/m³",
    "pm4": "µg/m³",
    "pm10": "µg/m³",
    "window": "s",
}
AGGREGATE_UNITS = {"count": "readings"}


class JSONResponse(_StarletteJSONResponse):
    """orjson instead of the standard library: several times faster on long result lists."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def units_for(columns: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Units of result columns, including aggregate columns such as ``pm25_mean``."""
    out = {}
    for column in columns:
        if column in UNITS:
            out[column] = UNITS[column]
            continue
        base, _, agg = column.rpartition("_")
        if base in UNITS and agg in ("mean", "min", "max", "median", "count"):
            out[column] = AGGREGATE_UNITS.get(agg, UNITS[base])
    return out


def envelope(settings: ApiSettings, results: list, query: dict[str, Any], units: dict[str, str] | None = None,
             **extra: Any) -> dict:
    meta = {
        "licence": settings.licence,
        "licence_url": settings.licence_url,
        "attribution": settings.attribution,
        "units": UNITS if units is None else units,
        "query": query,
        "found": len(results),
        **extra,
    }
    return {"meta": meta, "results": results}

