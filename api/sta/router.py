"""``/sta/v1.1``: the SensorThings API as one catch-all GET route over :mod:`api.sta.engine`.

The query options are declared (so the OpenAPI document and schemathesis know them) but
read from the raw query string, where an unknown ``$option`` is a 400 and a repeated one
too. The catalogue of stations is loaded once per :data:`CATALOGUE_TTL_S` per process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from api import errors as api_errors
from api.deps import InfluxDep, SettingsDep
from api.envelope import JSONResponse
from api.errors import ApiError, body
from api.settings import ApiSettings
from api.sta import engine, model
from api.sta.errors import bad_request
from civicair.influx import AsyncInflux, InfluxBusy, InfluxRejected, InfluxUnavailable
from civicair.influxql import QueryError

PREFIX = "/sta/v1.1"
#: Seconds a loaded catalogue (stations, positions, series) serves before it is reloaded.
CATALOGUE_TTL_S = 10.0

router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed path or query option"},
    404: {"description": "No such entity, property or entity set"},
    501: {"description": "An option or function of the standard this server does not implement"},
    503: {"description": "InfluxDB is unavailable or busy"},
}


async def catalogue(request: Request, influx: AsyncInflux, settings: ApiSettings) -> model.Catalogue:
    state = request.app.state
    cached = getattr(state, "sta_catalogue", None)
    if cached is not None and time.monotonic() - cached.loaded_at < CATALOGUE_TTL_S:
        return cached
    lock = getattr(state, "sta_lock", None)
    if lock is None:
        lock = state.sta_lock = asyncio.Lock()
    async with lock:  # one reload at a time, however many requests arrive together
        cached = getattr(state, "sta_catalogue", None)
        if cached is not None and time.monotonic() - cached.loaded_at < CATALOGUE_TTL_S:
            return cached
        cat = await model.load(influx, settings)
        cat.loaded_at = time.monotonic()
        state.sta_catalogue = cat
        return cat


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


_ROOT_EXAMPLE = {
    "value": [{"name": "Things", "url": "https://air.example.org/sta/v1.1/Things"}],
    "serverSettings": {"conformance": engine.CONFORMANCE},
    "licence": {"name": "CC-BY-4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
    "attribution": "civicair contributors and volunteer station hosts",
}
_COLLECTION_EXAMPLE = {
    "@iot.count": 1,
    "value": [{
        "@iot.id": 1, "@iot.selfLink": "https://air.example.org/sta/v1.1/Datastreams(1)",
        "name": "PM2.5", "description": "PM2.5 at Lab 1, channel a",
        "unitOfMeasurement": {"name": "microgram per cubic meter", "symbol": "ug/m3",
                              "definition": "http://unitsofmeasure.org/ucum.html#para-30"},
        "observationType": model.OM_MEASUREMENT,
        "Thing@iot.navigationLink": "https://air.example.org/sta/v1.1/Datastreams(1)/Thing",
        "Observations": [{"@iot.id": 6062236096,
                          "phenomenonTime": "2026-01-01T11:59:00Z/2026-01-01T12:00:00Z",
                          "resultTime": "2026-01-01T12:00:00Z", "result": 12.3, "resultQuality": []}],
    }],
}


@router.get("", summary="SensorThings service root",
            responses={200: {"content": {"application/json": {"example": _ROOT_EXAMPLE}}}, **_ERRORS})
async def service_root(request: Request, settings: SettingsDep) -> JSONResponse:
    """The eight entity sets and the conformance classes (OGC 18-088, read-only)."""
    return JSONResponse(engine.service_root(_root(request), settings))


@router.get("/{path:path}", summary="SensorThings resources", response_model=None,
            responses={200: {"description": "An entity, a collection, a property or its $value",
                             "content": {"application/json": {"example": _COLLECTION_EXAMPLE},
                                         "text/plain": {}}}, **_ERRORS})
async def resource(
    path: str, request: Request, influx: InfluxDep, settings: SettingsDep,
    top: Annotated[str | None, Query(alias="$top")] = None,
    skip: Annotated[str | None, Query(alias="$skip")] = None,
    count: Annotated[str | None, Query(alias="$count")] = None,
    orderby: Annotated[str | None, Query(alias="$orderby")] = None,
    select: Annotated[str | None, Query(alias="$select")] = None,
    expand: Annotated[str | None, Query(alias="$expand")] = None,
    filter_: Annotated[str | None, Query(alias="$filter")] = None,
) -> Response:
    """Entity sets, entities, properties (`/name`, `/name/$value`), navigation and `$ref`,
    with `$top $skip $count $orderby $select $expand $filter` (docs/sensorthings.md)."""
    if path in ("", "/"):
        return JSONResponse(engine.service_root(_root(request), settings))
    try:
        return await _resource(path, request, influx, settings)
    except (InfluxBusy, InfluxUnavailable, InfluxRejected) as exc:
        # The app's answer (503 with Retry-After, or 400), plus the `message` of every STA error.
        if isinstance(exc, InfluxBusy):
            response = await api_errors.influx_busy(request, exc)
        elif isinstance(exc, InfluxUnavailable):
            response = await api_errors.influx_unavailable(request, exc)
        else:
            response = await api_errors.influx_rejected(request, exc)
        content = orjson.loads(response.body)
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return JSONResponse(content | {"message": content["detail"]}, status_code=response.status_code,
                            headers=headers)


async def _resource(path: str, request: Request, influx: AsyncInflux, settings: ApiSettings) -> Response:
    try:
        try:
            cat = await catalogue(request, influx, settings)
            ctx = engine.Context(_root(request), cat, influx, settings, path)
            result = await engine.resolve(ctx, path, list(request.query_params.multi_items()))
        except QueryError as exc:  # a value no InfluxQL builder accepts (their messages name no input)
            raise bad_request(f"the query cannot be answered: {exc}") from None
    except ApiError as exc:
        # SensorThings clients (FROST's among them) read the reason from `message`.
        return JSONResponse(body(exc.detail, exc.code) | {"message": exc.detail}, status_code=exc.status)
    if result.stream is not None:
        return _streamed(result.stream)
    if result.text:
        return PlainTextResponse(result.body, status_code=result.status) if result.status != 204 \
            else Response(status_code=204)
    return JSONResponse(result.body, status_code=result.status)


def _streamed(streamed: engine.Streamed) -> Response:
    """A page whose body is all there in one piece, or sent as it is made (no ``ETag``: it is not
    known before the body is sent; api/middleware.py)."""
    if streamed.rest is None:
        return Response(streamed.first, media_type="application/json")
    rest = streamed.rest

    async def body() -> AsyncIterator[bytes]:
        yield streamed.first
        async with aclosing(rest):  # type: ignore[type-var]  # (a client gone: InfluxDB's stream closed too)
            async for part in rest:
                yield part
    return StreamingResponse(body(), media_type="application/json")
