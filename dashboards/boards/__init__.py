"""The three public dashboards: Overview, Station and Network health.

One module per board (:mod:`.overview`, :mod:`.station`, :mod:`.network`), each built
with Grafana's typed builders (:mod:`dashboards.grafana`); :data:`BOARDS` lists them
with the file name ``civicair dashboards build`` writes, as the JSON Grafana stores.
Queries follow the InfluxDB schema of DESIGN.md: measurement ``pm`` (tags station,
sensor, channel; fields ``pm25`` corrected, the sensor's own ``pm25_atm`` …, ``rh``,
``temp``, ``qc``, ``n``, ``window``) and measurement ``station`` (tag station; fields
name, lat, lon). Descriptions are written for a member of the public: what the panel
shows, where the numbers come from, and what they cannot tell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.boards.network import network
from dashboards.boards.overview import overview
from dashboards.boards.station import station
from dashboards.grafana import as_json

#: file name (without .json) -> the board's builder
BUILDERS: dict[str, Callable[[], db.Dashboard]] = {
    "overview": overview,
    "station": station,
    "network-health": network,
}


def _json_of(make: Callable[[], db.Dashboard]) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        return as_json(make())
    build.__name__ = build.__qualname__ = make.__name__
    return build


#: file name (without .json) -> the board as Grafana's JSON (a fresh dict on every call)
BOARDS: dict[str, Callable[[], dict[str, Any]]] = {name: _json_of(make) for name, make in BUILDERS.items()}
