"""``create_app(settings)``: the whole API, built on the settings it is given.

Middleware, outermost first: CORS (any origin, GET only) -> rate limit (off unless
``rate_limit_enabled``) -> response cache (10 s on /latest, /stations, /aqi) -> gzip (level 1
from 256 KiB) -> ETag/Cache-Control/304 -> routes.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic.json_schema import models_json_schema
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from api import errors
from api.envelope import JSONResponse
from api.middleware import (
    AdaptiveGZipMiddleware,
    ConditionalGetMiddleware,
    RateLimitMiddleware,
    ResponseCacheMiddleware,
)
from api.rollups import Coverage
from api.routers import aqi, archive, health, latest, measurements, stations
from api.schemas import FeatureCollection
from api.settings import ApiSettings
from api.sta import router as sta_router
from civicair import __version__
from civicair.influx import AsyncInflux

DESCRIPTION = """\
Citizen PM2.5 measurements as open time series. Read-only; every endpoint is a GET.

* Times are UTC unless `tz` is given; `from`/`to` take an ISO 8601 date or date-time.
* Aggregates leave out readings with a quality flag unless `include_flagged=true`.
* Raw readings are cursor-paged (`meta.paging.next_cursor`); CSV without `limit` streams the range.
* Station positions are rounded to 3 decimals (about 100 m) unless the host opted in.
* Data licence: see `meta.licence` (CC BY 4.0 by default) and the attribution in every response.

Errors are `{"detail": …, "code": …}`; limits and codes are in docs/api.md.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.influx = AsyncInflux(settings.influx(), max_concurrent=settings.influx_max_concurrent,
                                       queue_timeout_s=settings.influx_queue_timeout_s)
        try:
            yield
        finally:
            await app.state.influx.aclose()

    app = FastAPI(
        title="civicair open air-quality API",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=JSONResponse,
        lifespan=lifespan,
        license_info={"name": "Code: AGPL-3.0-or-later; data: " + settings.licence,
                      "url": settings.licence_url},
    )
    app.state.settings = settings
    app.state.rollup_coverage = Coverage(settings.rollup_rp or None) if settings.rollups else None
    errors.install(app)
    for router in (stations.router, measurements.router, latest.router, aqi.router, archive.router,
                   health.router, sta_router.router):
        app.include_router(router)

    app.add_middleware(ConditionalGetMiddleware, max_age_s=settings.cache_max_age_s)
    if settings.gzip_level:
        # Archive files are compressed already (Parquet, .csv.gz): sent as they are, with their length.
        # Bodies of 256 KiB and more (a SensorThings page of 10,000 Observations: 5 MB) at level 1.
        app.add_middleware(AdaptiveGZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level,
                           exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES,
                                                  "application/vnd.apache.parquet"))
    if settings.response_cache_s > 0:
        app.add_middleware(ResponseCacheMiddleware, ttl_s=settings.response_cache_s,
                           paths=("/v1/latest", "/v1/stations", "/v1/aqi"))
    if settings.rate_limit_enabled:
        app.add_middleware(RateLimitMiddleware, limit=settings.rate_limit_requests,
                           window_s=settings.rate_limit_window_s,
                           trust_forwarded=settings.rate_limit_trust_forwarded, exempt=("/v1/health",))
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["GET"], allow_headers=["*"], max_age=86400,
        expose_headers=["ETag", "Link", "Retry-After", "Content-Disposition", "X-Data-Licence",
                        "X-Data-Attribution", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                        "X-RateLimit-Reset"],
    )
    # FastAPI's documented way to extend the generated schema is to replace this method.
    app.openapi = _openapi_with_geojson(app)  # type: ignore[method-assign]
    return app


def _openapi_with_geojson(app: FastAPI):
    """The generated schema plus FeatureCollection, which only ``geojson`` responses use."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            _, defs = models_json_schema([(FeatureCollection, "serialization")],
                                         ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in defs.get("$defs", {}).items():
                components.setdefault(name, definition)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
