"""Station metadata: the line the ingest writes for it, and what the API publishes.

The bridge publishes a retained JSON object on ``civicair/v1/{station}/meta``
(``firmware_bridge.config.BridgeConfig.meta``)::

    {"name": "Lab 1", "lat": 52.0907, "lon": 5.1214, "sensors": {"a": "pms5003"},
     "software": "civicair 0.1.0", "firmware": "…", "licence": "CC-BY-4.0",
     "exact_location": false}

:func:`meta_to_line` turns it into one point of measurement ``station`` (tag
``station``), with these fields (the schema the API reads; docs/api.md):

================  =======  =====================================================
field             type     meaning
================  =======  =====================================================
name              string   display name (default: the station id)
lat, lon          float    WGS 84 degrees; rounded to 3 decimals (about 100 m)
                           unless ``exact_location`` is true
exact_location    boolean  the host opted in to publishing the exact position;
                           always written, so removing the opt-in takes effect
sensors_a/_b      string   sensor model on channel a / b
firmware          string   sensor or board firmware, free text
software          string   bridge software version
licence           string   data licence of this station (SPDX id) when it differs
================  =======  =====================================================

Status messages (``online``/``offline``) are points of the same measurement with
the single field ``status`` (``ingest/meta.py``); they carry no ``name``, which is
how the API tells the two apart (:func:`api.influxql.station_meta`).

Pure: no I/O, no clock. Invalid metadata raises :class:`MetaError` with a reason
the ingest can dead-letter; keys outside the schema are ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from firmware_bridge import contract

MEASUREMENT = "station"
COORD_DECIMALS = 3
MAX_TEXT = 200
_MODEL_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MetaError(ValueError):
    """Station metadata that cannot be stored; the message says which field and why."""


def _text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MetaError(f"meta {key!r} must be a string, got {type(value).__name__}")
    value = _CONTROL.sub(" ", value).strip()
    if len(value) > MAX_TEXT:
        raise MetaError(f"meta {key!r} is longer than {MAX_TEXT} characters")
    return value or None


def _coordinate(key: str, value: Any, bound: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetaError(f"meta {key!r} must be a number, got {value!r}")
    if abs(value) > bound:
        raise MetaError(f"meta {key!r} must lie within ±{bound:g}, got {value!r}")
    return float(value)


def _sensors(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = {"a": value}
    elif isinstance(value, list | tuple):
        if len(value) > len(contract.CHANNELS):
            raise MetaError(f"meta 'sensors' lists more than {len(contract.CHANNELS)} sensors")
        value = dict(zip(contract.CHANNELS, value, strict=False))
    if not isinstance(value, Mapping):
        raise MetaError("meta 'sensors' must map channel to model, e.g. {\"a\": \"pms5003\"}")
    out = {}
    for channel, model in value.items():
        if channel not in contract.CHANNELS:
            raise MetaError(f"meta 'sensors' channel must be 'a' or 'b', got {channel!r}")
        if not isinstance(model, str) or not _MODEL_RE.match(model):
            raise MetaError(f"meta 'sensors' model for channel {channel} must be a short lower-case name")
        out[channel] = model
    return out


def _string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def meta_to_line(station: str, meta: Mapping[str, Any], ts: int) -> bytes:
    """One line of InfluxDB line protocol (precision s) for a station's meta message.

    Parameters
    ----------
    station : str
        Station id (the topic's); must match the contract's pattern.
    meta : mapping
        The decoded JSON object of the retained ``meta`` message.
    ts : int
        When the ingest received it [s since the UTC epoch].

    Raises
    ------
    MetaError
        A field has the wrong type or an impossible value.
    """
    if not contract.is_station_id(station):
        raise MetaError(f"station id {station!r} must match {contract.STATION_ID_PATTERN}")
    if not isinstance(meta, Mapping):
        raise MetaError(f"meta must be a JSON object, got {type(meta).__name__}")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise MetaError("ts must be an integer number of seconds")
    exact = meta.get("exact_location", False)
    if not isinstance(exact, bool):
        raise MetaError("meta 'exact_location' must be true or false")
    lat = _coordinate("lat", meta.get("lat"), 90.0)
    lon = _coordinate("lon", meta.get("lon"), 180.0)
    if (lat is None) != (lon is None):
        raise MetaError("meta needs both 'lat' and 'lon', or neither")

    fields = [f"name={_string_field(_text('name', meta.get('name')) or station)}"]
    if lat is not None and lon is not None:
        if not exact:  # store no more precision than is published (Grafana reads InfluxDB too)
            lat, lon = round(lat, COORD_DECIMALS), round(lon, COORD_DECIMALS)
        fields += [f"lat={lat!r}", f"lon={lon!r}"]
    fields.append(f"exact_location={'true' if exact else 'false'}")
    for channel, model in sorted(_sensors(meta.get("sensors")).items()):
        fields.append(f"sensors_{channel}={_string_field(model)}")
    for key in ("firmware", "software", "licence"):
        if (text := _text(key, meta.get(key))) is not None:
            fields.append(f"{key}={_string_field(text)}")
    return f"{MEASUREMENT},station={station} {','.join(fields)} {ts}\n".encode()


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

    def published_position(self) -> tuple[float | None, float | None]:
        """(lat, lon) as the API publishes them: rounded to 3 decimals unless opted in."""
        if self.lat is None or self.lon is None:
            return None, None
        if self.exact_location:
            return float(self.lat), float(self.lon)
        return round(float(self.lat), COORD_DECIMALS), round(float(self.lon), COORD_DECIMALS)


def meta_from_row(station: str, columns: list[str], row: list[Any]) -> StationMeta:
    """A StationMeta from one row of :func:`api.influxql.station_meta` (any subset of its fields)."""
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
