"""``create_app(settings)``: the whole API, built on the settings it is given."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from api.envelope import JSONResponse
from api.routers import measurements, stations
from api.settings import ApiSettings
from civicair import __version__
from civicair.influx import AsyncInflux, InfluxRejected, InfluxUnavailable


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.influx = AsyncInflux(settings.influx())
        try:
            yield
        finally:
            await app.state.influx.aclose()

    app = FastAPI(
        title="civicair open air-quality API",
        version=__version__,
        description="Citizen PM2.5 measurements as open time series. Read-only.",
        default_response_class=JSONResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.exception_handler(InfluxUnavailable)
    async def _down(request: Request, exc: InfluxUnavailable):
        return JSONResponse({"detail": "the time-series database is unavailable; try again shortly"},
                            status_code=503, headers={"Retry-After": "10"})

    @app.exception_handler(InfluxRejected)
    async def _rejected(request: Request, exc: InfluxRejected):
        return JSONResponse({"detail": f"query refused by the database: {exc.message}"}, status_code=400)

    app.include_router(stations.router)
    app.include_router(measurements.router)
    return app
