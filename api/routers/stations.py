"""/v1/stations: which stations exist, and when they were last heard from."""

from __future__ import annotations

from fastapi import APIRouter

from api import influxql
from api.deps import InfluxDep, SettingsDep
from api.envelope import JSONResponse, envelope, iso
from civicair.influx import series

router = APIRouter(prefix="/v1", tags=["stations"])


@router.get("/stations", response_class=JSONResponse, summary="Every station")
async def list_stations(influx: InfluxDep, settings: SettingsDep):
    last, first = await influx.query(
        influxql.station_last_seen() + "; " + influxql.station_first_seen()
    )
    firsts = {s["tags"]["station"]: s["values"][0][0] for s in series(first)}
    results = []
    for s in series(last):
        station = s["tags"]["station"]
        results.append(
            {
                "id": station,
                "first_seen": iso(firsts.get(station, s["values"][0][0])),
                "last_seen": iso(s["values"][0][0]),
            }
        )
    results.sort(key=lambda r: r["id"])
    return envelope(settings, results, {})
