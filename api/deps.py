"""Dependencies, as Annotated aliases: a route declares ``influx: InfluxDep``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import ApiSettings
from civicair.influx import AsyncInflux


# async on purpose: FastAPI runs plain ``def`` dependencies in a worker thread, a thread
# hop per request for a dictionary lookup.
async def _influx(request: Request) -> AsyncInflux:
    return request.app.state.influx


async def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


InfluxDep = Annotated[AsyncInflux, Depends(_influx)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
