"""Error responses: one shape, ``{"detail": str, "code": str, "errors": [...]}``.

``detail`` is a sentence a person can act on; ``code`` is stable for programs:

- ``invalid_parameter``: a parameter is malformed on its own (type, pattern, enum,
  bounds): the OpenAPI schema already says so.
- the other codes (:data:`SEMANTIC_CODES`) are rules the schema cannot express
  (``from`` before ``to``, a range too long, a cursor from another query, …).

Nothing a client sent is echoed back beyond the parameter's name: hostile input is
not reflected.
"""

from __future__ import annotations

from typing import TypedDict

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.envelope import JSONResponse
from civicair.influx import InfluxBusy, InfluxRejected, InfluxUnavailable

#: Codes for rules between parameters or against limits (see module docstring).
SEMANTIC_CODES = frozenset({
    "invalid_time",  # a date that does not exist (2026-02-30), or outside 2000–2100
    "invalid_range",  # `from` not before `to`
    "range_too_long",  # longer than the configured maximum
    "invalid_area",  # bbox/near out of range or radius without near
    "missing_stations",  # /measurements without stations, bbox or near
    "too_many_stations",
    "too_many_rows",  # an aggregate or CSV larger than the configured budget
    "invalid_combination",  # e.g. aggregates with interval=raw
})


class ApiError(Exception):
    """A client error found after validation (limits that depend on settings or data)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def semantic(code: str, message: str) -> PydanticCustomError:
    """An error raised inside a pydantic validator that keeps its own ``code``."""
    assert code in SEMANTIC_CODES, code
    return PydanticCustomError(code, message)


def body(detail: str, code: str, errors: list | None = None) -> dict:
    out: dict = {"detail": detail, "code": code}
    if errors is not None:
        out["errors"] = errors
    return out


def _where(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "header")]
    return f"`{'.'.join(parts)}`" if parts else "the query"


#: Plain words for a pattern mismatch, instead of the regular expression itself.
PATTERN_HINTS = {
    "from": "must be an ISO 8601 date (2026-01-01) or date-time (2026-01-01T06:00:00+01:00)",
    "to": "must be an ISO 8601 date (2026-01-01) or date-time (2026-01-01T06:00:00+01:00)",
    "station": "must be a station id: lower-case letters, digits and '-', at most 63 characters",
    "stations": "must be comma-separated station ids (lower-case letters, digits and '-'), at most 100",
    "params": "must be comma-separated parameter names from the documented list (see /docs)",
    "aggregates": "must be comma-separated from: mean, min, max, count, median",
    "bbox": "must be minLon,minLat,maxLon,maxLat in decimal degrees",
    "near": "must be lat,lon in decimal degrees",
    "cursor": "must be the `next_cursor` of a previous page (a date-time)",
}


def _message(err: dict) -> str:
    if err.get("type") == "string_pattern_mismatch":
        loc = err.get("loc", ())
        hint = PATTERN_HINTS.get(str(loc[-1])) if loc else None
        if hint:
            return hint
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


class _FieldError(TypedDict):
    loc: list[str]
    msg: str
    type: str


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors: list[_FieldError] = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": _message(e), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    codes = {e["type"] for e in errors}
    code = codes.pop() if len(codes) == 1 and codes <= SEMANTIC_CODES else "invalid_parameter"
    detail = "; ".join(
        f"{_where(tuple(e['loc']))}: {e['msg']}" if e["type"] not in SEMANTIC_CODES else e["msg"]
        for e in errors
    )
    return JSONResponse(body(detail, code, errors), status_code=422)


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(body(exc.detail, exc.code), status_code=exc.status)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "request not understood"
    return JSONResponse(body(detail, code), status_code=exc.status_code, headers=exc.headers)


def _try_later(detail: str, code: str, retry_after_s: int) -> JSONResponse:
    return JSONResponse(body(detail, code), status_code=503,
                        headers={"Retry-After": str(retry_after_s), "Cache-Control": "no-store"})


async def influx_unavailable(request: Request, exc: InfluxUnavailable) -> JSONResponse:
    return _try_later("the time-series database is unavailable; try again shortly", "unavailable", 10)


async def influx_busy(request: Request, exc: InfluxBusy) -> JSONResponse:
    return _try_later("the time-series database is busy with other requests; try again shortly", "busy", 5)


async def influx_rejected(request: Request, exc: InfluxRejected) -> JSONResponse:
    # Queries are built from validated input only, so this is rare: a database with a
    # smaller limit than ours, or a zone its tz database lacks.
    return JSONResponse(body(f"query refused by the database: {exc.message}", "database_refused"),
                        status_code=400)


def install(app) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(InfluxBusy, influx_busy)
    app.add_exception_handler(InfluxUnavailable, influx_unavailable)
    app.add_exception_handler(InfluxRejected, influx_rejected)
