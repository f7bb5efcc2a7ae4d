"""Wire contract v1: MQTT topics and reading payloads.

The producer (the bridge) owns the contract; ingest imports it from here.
Pure Python, no third-party imports: it must run on a Pi with the ``bridge``
extra only, and in the ingest without the bridge's serial stack.
"""

from __future__ import annotations

import math
import re
from typing import Any

from firmware_bridge.errors import ContractError

WIRE_VERSION = 1
TOPIC_ROOT = "civicair/v1"
DEADLETTER_TOPIC = f"{TOPIC_ROOT}/_deadletter"

STATION_ID_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
_STATION_ID_RE = re.compile(STATION_ID_PATTERN + r"\Z")

SENSORS = ("pms5003", "pms7003", "pmsa003", "pms5003t", "pms5003st", "sds011", "sps30")
CHANNELS = ("a", "b")

#: Measured values a reading may carry, with their units. Plantower counts are
#: particles per 0.1 L of air above a size; Sensirion number concentrations are
#: particles per cm³ below a size. They differ, so they carry different names.
MEASURED_FIELDS: dict[str, str] = {
    "pm1_cf1": "µg/m³",
    "pm25_cf1": "µg/m³",
    "pm10_cf1": "µg/m³",
    "pm1_atm": "µg/m³",
    "pm25_atm": "µg/m³",
    "pm4_atm": "µg/m³",
    "pm10_atm": "µg/m³",
    "n0_3": "#/0.1L",
    "n0_5": "#/0.1L",
    "n1_0": "#/0.1L",
    "n2_5": "#/0.1L",
    "n5_0": "#/0.1L",
    "n10_0": "#/0.1L",
    "nc0_5": "#/cm³",
    "nc1_0": "#/cm³",
    "nc2_5": "#/cm³",
    "nc4_0": "#/cm³",
    "nc10_0": "#/cm³",
    "tps": "µm",
    "rh": "%",
    "temp": "°C",
    "hcho": "mg/m³",
}

#: Header fields every reading carries, with their JSON types.
HEADER_FIELDS: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "station": str,
    "sensor": str,
    "channel": str,
    "ts": int,
    "window": int,
    "n": int,
    "seq": int,
    "boot": int,
    "synced": bool,
}

#: Optional window statistics: ``"min": {field: value}``, ``"max": {field: value}``.
STAT_KEYS = ("min", "max")

#: No reading is ever stamped before this (2020-01-01T00:00:00Z): a Pi without
#: an RTC boots in 1970 until NTP answers.
EARLIEST_TS = 1577836800


def is_station_id(value: object) -> bool:
    return isinstance(value, str) and _STATION_ID_RE.match(value) is not None


def readings_topic(station: str) -> str:
    return f"{TOPIC_ROOT}/{_checked(station)}/readings"


def status_topic(station: str) -> str:
    return f"{TOPIC_ROOT}/{_checked(station)}/status"


def meta_topic(station: str) -> str:
    return f"{TOPIC_ROOT}/{_checked(station)}/meta"


def readings_subscription() -> str:
    return f"{TOPIC_ROOT}/+/readings"


def station_from_topic(topic: str) -> str:
    """The station id of a ``civicair/v1/{station}/{kind}`` topic, or ContractError."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise ContractError(f"topic {topic!r} is not civicair/v1/{{station}}/{{kind}}")
    if not is_station_id(parts[2]):
        raise ContractError(f"topic {topic!r}: station id must match {STATION_ID_PATTERN}")
    return parts[2]


def _checked(station: str) -> str:
    if not is_station_id(station):
        raise ContractError(f"station id {station!r} must match {STATION_ID_PATTERN}")
    return station


def validate_reading(obj: Any, topic_station: str | None = None) -> dict[str, Any]:
    """Check one decoded reading against contract v1 and return it.

    Raises :class:`ContractError` with a reason a human can act on. Unknown keys
    are refused rather than dropped silently: a producer that sends them has a
    bug worth seeing in the dead letter.
    """
    if not isinstance(obj, dict):
        raise ContractError(f"reading must be a JSON object, got {type(obj).__name__}")
    for name, kind in HEADER_FIELDS.items():
        if name not in obj:
            raise ContractError(f"missing field {name!r}")
        value = obj[name]
        # bool is an int subclass: keep them apart both ways.
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ContractError(f"field {name!r} must be an integer, got {value!r}")
        if kind is not int and not isinstance(value, kind):
            raise ContractError(f"field {name!r} must be {kind.__name__}, got {value!r}")
    if obj["v"] != WIRE_VERSION:
        raise ContractError(f"unsupported contract version v={obj['v']!r}")
    if not is_station_id(obj["station"]):
        raise ContractError(f"station id {obj['station']!r} must match {STATION_ID_PATTERN}")
    if topic_station is not None and obj["station"] != topic_station:
        raise ContractError(
            f"payload station {obj['station']!r} differs from topic station {topic_station!r}"
        )
    if obj["sensor"] not in SENSORS:
        raise ContractError(f"unknown sensor {obj['sensor']!r}; one of {', '.join(SENSORS)}")
    if obj["channel"] not in CHANNELS:
        raise ContractError(f"channel must be 'a' or 'b', got {obj['channel']!r}")
    if obj["ts"] < EARLIEST_TS:
        raise ContractError(f"ts {obj['ts']} is before 2020-01-01")
    if obj["window"] <= 0 or obj["n"] < 0 or obj["seq"] < 0 or obj["boot"] < 0:
        raise ContractError("window must be > 0; n, seq and boot must be >= 0")
    measured = 0
    for name, value in obj.items():
        if name in HEADER_FIELDS:
            continue
        if name in STAT_KEYS:
            _check_stats(name, value)
            continue
        if name not in MEASURED_FIELDS:
            raise ContractError(f"unknown field {name!r}")
        if value is None:
            continue  # explicitly missing
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ContractError(f"field {name!r} must be a finite number or null, got {value!r}")
        measured += 1
    if measured == 0 and obj["n"] > 0:
        raise ContractError("reading with n > 0 carries no measured value")
    return obj


def _check_stats(key: str, stats: Any) -> None:
    if not isinstance(stats, dict):
        raise ContractError(f"field {key!r} must be an object of field -> number")
    for name, value in stats.items():
        if name not in MEASURED_FIELDS:
            raise ContractError(f"unknown field {name!r} in {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ContractError(f"{key}.{name} must be a finite number, got {value!r}")
