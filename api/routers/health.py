"""/v1/health: is the service up, and can it reach InfluxDB."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import InfluxDep
from api.envelope import JSONResponse
from api.schemas import Health
from civicair import __version__

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", summary="Service and database reachability", response_model=None,
            responses={200: {"model": Health, "content": {"application/json": {
                "example": {"status": "ok", "version": __version__, "influxdb": "up"}}}},
                503: {"model": Health, "description": "InfluxDB does not answer."}})
async def health(influx: InfluxDep) -> Response:
    """200 when InfluxDB answers its ping, 503 otherwise. Never cached, never rate limited."""
    up = await influx.ping()
    return JSONResponse({"status": "ok" if up else "degraded", "version": __version__,
                         "influxdb": "up" if up else "down"},
                        status_code=200 if up else 503, headers={"Cache-Control": "no-store"})
