"""Dependencies, as Annotated aliases: a route declares ``influx: InfluxDep``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import ApiSettings
from civicair.influx import AsyncInflux


def _influx(request: Request) -> AsyncInflux:
    return request.app.state.influx


def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


InfluxDep = Annotated[AsyncInflux, Depends(_influx)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
