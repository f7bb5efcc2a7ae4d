"""Station metadata as the API reads it back from measurement ``station``.

The write side (the fields, their types and limits, the published rounding of
coordinates) is :mod:`civicair.schema.storage`, the one place that writes station
points; this module turns the rows of :func:`civicair.influxql.station_meta` into
:class:`StationMeta` and decides whether a station is online.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from civicair.schema import contract
from civicair.schema.storage import published_position

__all__ = ["StationMeta", "meta_from_row", "online_status"]


# -- read side -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StationMeta:
    station: str
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    exact_location: bool = False
    sensors: tuple[tuple[str, str], ...] = ()
    firmware: str | None = None
    software: str | None = None
    licence: str | None = None
    #: One window every this many seconds (a duty-cycled station); None or 0: always on.
    duty_period_s: int | None = None
    #: (channel, hours its sensor's laser has run), as the bridge last reported.
    laser_hours: tuple[tuple[str, float], ...] = ()

    def windows_per_day(self, window_s: int) -> float:
        """How many windows a full day should hold: 86400 / duty period, or / window."""
        return 86400 / (self.duty_period_s or window_s or 60)

    def published_position(self) -> tuple[float | None, float | None]:
        """(lat, lon) as the API publishes them: rounded to 3 decimals unless opted in."""
        return published_position(self.lat, self.lon, self.exact_location)


def meta_from_row(station: str, columns: list[str], row: list[Any]) -> StationMeta:
    """A StationMeta from one row of :func:`civicair.influxql.station_meta` (any subset of its fields)."""
    v = dict(zip(columns, row, strict=False))
    return StationMeta(
        station=station,
        name=_str_or_none(v.get("name")),
        lat=_number_or_none(v.get("lat")),
        lon=_number_or_none(v.get("lon")),
        exact_location=v.get("exact_location") is True,
        sensors=tuple((ch, v[f"sensors_{ch}"]) for ch in contract.CHANNELS
                      if isinstance(v.get(f"sensors_{ch}"), str)),
        firmware=_str_or_none(v.get("firmware")),
        software=_str_or_none(v.get("software")),
        licence=_str_or_none(v.get("licence")),
        duty_period_s=v["duty_period"] if type(v.get("duty_period")) is int else None,
        laser_hours=tuple((ch, float(v[f"laser_hours_{ch}"])) for ch in contract.CHANNELS
                          if type(v.get(f"laser_hours_{ch}")) in (int, float)),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number_or_none(value: Any) -> float | None:
    # type(), not isinstance: a JSON bool is not a coordinate.
    return float(value) if type(value) in (int, float) else None


def online_status(last_seen: int | None, window_s: int | None, status: str | None, status_time: int | None,
                  now: float, *, windows: int, min_s: int) -> str:
    """``online``, ``offline`` or ``unknown`` (never heard from).

    Online: a reading younger than max(windows × window, min_s) and no ``offline``
    status (the bridge's MQTT last will) reported after that reading.
    """
    if last_seen is None:
        return "offline" if status == "offline" else "unknown"
    if status == "offline" and status_time is not None and status_time >= last_seen:
        return "offline"
    stale_after = max(windows * (window_s or 60), min_s)
    return "online" if now - last_seen <= stale_after else "offline"
