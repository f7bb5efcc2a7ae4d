"""/v1/stations/{station}/measurements: one station's readings over a time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api import influxql
from api.deps import InfluxDep, SettingsDep
from api.envelope import JSONResponse, envelope, iso
from civicair.influx import series
from firmware_bridge import contract

router = APIRouter(prefix="/v1", tags=["measurements"])

StationId = Annotated[
    str, Path(pattern=f"^{contract.STATION_ID_PATTERN}$", description="station id", examples=["lab-1"])
]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@router.get("/stations/{station}/measurements", response_class=JSONResponse,
            summary="Raw readings of one station")
async def station_measurements(
    station: StationId,
    influx: InfluxDep,
    settings: SettingsDep,
    from_: Annotated[datetime | None, Query(
        alias="from", description="start (ISO 8601; UTC if no offset); default: 24 h before `to`")] = None,
    to: Annotated[datetime | None, Query(
        description="end, exclusive (ISO 8601; UTC if no offset); default: now")] = None,
):
    end = _utc(to) if to else datetime.now(UTC)
    start = _utc(from_) if from_ else end - timedelta(days=1)
    if start >= end:
        raise HTTPException(422, "`from` must be before `to`")
    if end - start > timedelta(days=settings.max_range_days):
        raise HTTPException(422, f"time range longer than {settings.max_range_days} days")
    (result,) = await influx.query(influxql.raw_measurements(station, start, end, settings.max_rows))
    results = []
    for s in series(result):
        columns = s["columns"]
        for row in s["values"]:
            item = {c: v for c, v in zip(columns, row, strict=True) if v is not None}
            item["time"] = iso(item["time"])
            results.append(item)
    query = {"station": station, "from": iso(start.timestamp()), "to": iso(end.timestamp())}
    return envelope(settings, results, query)
