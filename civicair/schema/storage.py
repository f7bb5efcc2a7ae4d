"""The InfluxDB schema: measurements, tags, fields with their types and units, and the
one writer of station points.

A reading is stored as one point of measurement :data:`PM` (tags :data:`TAGS`, time =
the window's end in seconds); a redelivered reading lands on the same point, so writes
are idempotent. Station metadata and status are points of measurement :data:`STATION`
(tag ``station``), written only by :func:`meta_to_line` and :func:`status_line` here: the
ingest calls them, the API reads what they write.

Pure: no I/O, no clock. Invalid metadata raises :class:`MetaError` with a reason the
ingest can dead-letter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from civicair.schema import aqi, contract, nowcast, sensors
from civicair.schema.errors import ContractError
from civicair.schema.qc import Flag

DATABASE = "airquality"
PRECISION = "s"

#: Readings, one point per sensor and window.
PM = "pm"
TAGS = ("station", "sensor", "channel")
#: Station metadata and status, one point per message.
STATION = "station"

FieldType = Literal["float", "integer", "string", "boolean"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    unit: str | None
    description: str


def _measured(name: str, unit: str) -> Field:
    what = {"µg/m³": "mass concentration", "#/0.1L": "particles per 0.1 L above the size",
            "#/cm³": "number concentration below the size", "µm": "typical particle size",
            "%": "relative humidity", "°C": "temperature", "mg/m³": "formaldehyde"}[unit]
    return Field(name, "float", unit, f"{what}, as the sensor reports it (window mean)")


#: Fields of measurement :data:`PM`: what the sensor measured (the contract's measured
#: fields, window means; ``<name>_min``/``<name>_max`` hold window extremes when the
#: bridge sends them), then what the ingest derives and the reading's header.
PM_FIELDS: dict[str, Field] = {
    **{name: _measured(name, unit) for name, unit in contract.MEASURED_FIELDS.items()},
    "pm25": Field("pm25", "float", "µg/m³",
                  "PM2.5 corrected for humidity where a published correction applies (see pm25_method)"),
    "pm25_method": Field("pm25_method", "string", None, "which correction produced pm25"),
    "climate": Field("climate", "string", None,
                     "model of the temperature/humidity companion that measured rh and temp "
                     "(bme280, sht3x, dht22…); absent: the PM sensor's own, or none"),
    "qc": Field("qc", "integer", None, "quality flags, a bitmask (civicair.schema.qc)"),
    "n": Field("n", "integer", "frames", "sensor frames averaged in the window"),
    "seq": Field("seq", "integer", None, "the bridge's reading counter within a boot"),
    "boot": Field("boot", "integer", None, "the bridge's boot counter"),
    "window": Field("window", "integer", "s", "length of the averaging window"),
    "synced": Field("synced", "boolean", None, "the station's clock was known good"),
}

#: ``pm25_method`` values (ingest.corrections computes them; docs/quality.md cites each).
PM25_METHODS: tuple[str, ...] = (
    "none", "epa_barkjohn_2021", "epa_barkjohn_2022_smoke", "nilson_2022_kohler", "uncorrected_atm",
)

#: Fields of measurement :data:`STATION` written from a meta message (docs/api.md):
#: name, position (rounded unless opted in), sensor models per channel, free texts.
META_FIELDS: tuple[str, ...] = ("name", "lat", "lon", "exact_location", "sensors_a", "sensors_b", "firmware",
                                "software", "licence", "duty_period", "laser_hours_a", "laser_hours_b",
                                "life_used_a", "life_used_b")
#: Fields of measurement :data:`STATION` from a meta message's ``spool`` object, for the
#: health board (docs/delivery.md): readings the bridge sent that no stored confirmation
#: covered yet [count], and how long the oldest of them has waited [s]. Kept apart from
#: :data:`META_FIELDS` (the API's station description): they are operations, not metadata.
SPOOL_FIELDS: tuple[str, ...] = ("spool_unconfirmed", "spool_oldest_unconfirmed_s")
#: Longest duty period a station may declare [s]: one window a day.
MAX_DUTY_PERIOD_S = 86400
#: More laser hours than a century are a broken counter, not a sensor.
MAX_LASER_HOURS = 876_000.0
#: The one field of a status point (``online``/``offline``); a status point carries no
#: ``name``, which is how a reader tells the two kinds apart.
STATUS_FIELD = "status"
STATUSES = ("online", "offline")

#: Decimals of a published position: about 100 m, unless the host opted in to exact.
COORD_DECIMALS = 3
MAX_TEXT = 200
_MODEL_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MetaError(ContractError, ValueError):
    """Station metadata that cannot be stored; the message says which field and why."""


def published_position(lat: float | None, lon: float | None,
                       exact: bool) -> tuple[float | None, float | None]:
    """(lat, lon) as civicair publishes them: rounded to :data:`COORD_DECIMALS` unless opted in."""
    if lat is None or lon is None:
        return None, None
    if exact:
        return float(lat), float(lon)
    return round(float(lat), COORD_DECIMALS), round(float(lon), COORD_DECIMALS)


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


def _duty_period(value: Any) -> int | None:
    """A station's duty period [s]: it measures one window every this many seconds
    (0: always on). Coverage counts the windows it is meant to produce from it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DUTY_PERIOD_S:
        raise MetaError(f"meta 'duty_period' must be whole seconds from 0 to {MAX_DUTY_PERIOD_S}, "
                        f"got {value!r}")
    return value


def _spool(value: Any) -> dict[str, int]:
    """The bridge's confirmation backlog from meta ``spool`` (``unconfirmed``,
    ``oldest_unconfirmed_s``; other keys, e.g. ``evicted``, are not stored): field -> value."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MetaError("meta 'spool' must be an object, e.g. {\"unconfirmed\": 0}")
    out = {}
    for key, field_name in (("unconfirmed", SPOOL_FIELDS[0]), ("oldest_unconfirmed_s", SPOOL_FIELDS[1])):
        number = value.get(key)
        if number is None:
            continue
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 2**53:
            raise MetaError(f"meta 'spool.{key}' must be a whole number >= 0, got {number!r}")
        out[field_name] = number
    return out


def _laser_hours(value: Any) -> dict[str, float]:
    """Hours each channel's sensor has run its laser/fan (the bridge counts them across
    restarts and re-publishes its meta hourly): ``{"a": 1234.5}``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MetaError("meta 'laser_hours' must map channel to hours, e.g. {\"a\": 1234.5}")
    out = {}
    for channel, hours in value.items():
        if channel not in contract.CHANNELS:
            raise MetaError(f"meta 'laser_hours' channel must be 'a' or 'b', got {channel!r}")
        if (isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours)
                or not 0 <= hours <= MAX_LASER_HOURS):
            raise MetaError(f"meta 'laser_hours' for channel {channel} must be 0 to "
                            f"{MAX_LASER_HOURS:g} hours")
        out[channel] = float(hours)
    return out


def escape_string(value: str) -> str:
    """A line-protocol string field value escaped (backslash, double quote), quotes not added:
    the one rule, which the ingest's vectorised encoder applies per distinct value too."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def string_field(value: str) -> str:
    """A line-protocol string field value, quoted and escaped."""
    return '"' + escape_string(value) + '"'


def _checked_station(station: str, error: type[ContractError]) -> None:
    if not contract.is_station_id(station):
        raise error(f"station id {station!r} must match {contract.STATION_ID_PATTERN}")


def meta_to_line(station: str, meta: Mapping[str, Any], ts: int) -> bytes:
    """One line of InfluxDB line protocol (precision s) for a station's meta message.

    Parameters
    ----------
    station : str
        Station id (the topic's); must match the contract's pattern.
    meta : mapping
        The decoded JSON object of the retained ``meta`` message::

            {"name": "Lab 1", "lat": 52.0907, "lon": 5.1214, "sensors": {"a": "pms5003"},
             "software": "civicair 0.1.0", "firmware": "…", "licence": "CC-BY-4.0",
             "exact_location": false, "window": 60, "duty_period": 0,
             "laser_hours": {"a": 1234.5},
             "spool": {"evicted": 0, "unconfirmed": 3, "oldest_unconfirmed_s": 120}}

        Keys outside :data:`META_FIELDS` (and ``sensors``) are ignored.
    ts : int
        When the ingest received it [s since the UTC epoch].

    Raises
    ------
    MetaError
        A field has the wrong type or an impossible value.
    """
    _checked_station(station, MetaError)
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

    fields = [f"name={string_field(_text('name', meta.get('name')) or station)}"]
    # Store no more precision than is published (Grafana reads InfluxDB too).
    lat, lon = published_position(lat, lon, exact)
    if lat is not None and lon is not None:
        fields += [f"lat={lat!r}", f"lon={lon!r}"]
    fields.append(f"exact_location={'true' if exact else 'false'}")
    for channel, model in sorted(_sensors(meta.get("sensors")).items()):  # checked again below: cheap
        fields.append(f"sensors_{channel}={string_field(model)}")
    for key in ("firmware", "software", "licence"):
        if (text := _text(key, meta.get(key))) is not None:
            fields.append(f"{key}={string_field(text)}")
    if (duty := _duty_period(meta.get("duty_period"))) is not None:
        fields.append(f"duty_period={duty}i")
    models = _sensors(meta.get("sensors"))
    for channel, hours in sorted(_laser_hours(meta.get("laser_hours")).items()):
        fields.append(f"laser_hours_{channel}={hours!r}")
        # The share of the model's rated life, for the health board (Grafana cannot map a
        # model to its rating): written with the hours it comes from.
        if (rated := sensors.RATED_LIFE_HOURS.get(models.get(channel, ""))) is not None:
            fields.append(f"life_used_{channel}={round(100 * hours / rated, 1)!r}")
    for name, number in _spool(meta.get("spool")).items():
        fields.append(f"{name}={number}i")
    return f"{STATION},station={station} {','.join(fields)} {ts}\n".encode()


def status_line(station: str, payload: bytes, ts: int) -> bytes:
    """The :data:`STATION` point of a status payload (``online``/``offline``), or ContractError."""
    _checked_station(station, ContractError)
    status = payload.strip()
    if status.decode("ascii", "replace") not in STATUSES:
        raise ContractError(f"status must be 'online' or 'offline', got {payload[:40]!r}")
    return f'{STATION},station={station} {STATUS_FIELD}="{status.decode()}" {int(ts)}\n'.encode()


# -- rollups (docs/rollups.md) --------------------------------------------------------------
#: Hourly and daily aggregates of measurement :data:`PM`, one point per station and
#: interval (time = the interval's start, UTC), computed from raw by the rollup worker.
#: One series per *station* (tag ``station`` only), the grain the API aggregates at: its
#: means merge a station's sensors and channels, and a mean computed by InfluxDB over
#: exactly the readings the API's own query would see is the only way to serve the
#: same float (a sum of per-channel sums rounds differently in the last bit).
PM_1H = "pm_1h"
PM_1D = "pm_1d"
ROLLUPS = {"1h": PM_1H, "1d": PM_1D}
ROLLUP_TAGS = ("station",)
#: Stored fields of :data:`PM` that are rolled up (the API's pm25, pm25_raw, pm1, pm4,
#: pm10, rh and temp). Other parameters are aggregated from raw.
ROLLUP_PARAMS = ("pm25", "pm25_atm", "pm1_atm", "pm4_atm", "pm10_atm", "rh", "temp")
#: Statistics per parameter; the mean is InfluxDB's MEAN over the interval (not rounded).
ROLLUP_STATS = ("mean", "min", "max", "count")
#: Suffix of the statistics over every reading; without it, over clean readings only
#: (``qc & QC_FLAGGED_MASK = 0``, the API's default).
ALL_SUFFIX = "_all"
#: Readings per channel (``readings_a``), clean readings per channel (``clean_a``) and the
#: sum of the ``window`` of every reading per channel (``window_a`` [s], coverage panels);
#: the OR of every reading's ``qc`` (``qc_or``) and per flag the readings carrying it
#: (``flag_spike``, …). A field is left out where its value would be 0 or missing, so
#: an interval without clean readings has no clean fields at all (as the raw query
#: returns no row for it).
QC_OR = "qc_or"


def rollup_field(param: str, stat: str, clean: bool = True) -> str:
    """Name of a rollup field: ``pm25_mean`` (clean readings), ``pm25_mean_all`` (all)."""
    if param not in ROLLUP_PARAMS or stat not in ROLLUP_STATS:
        raise ValueError(f"no rollup field for {param!r} {stat!r}")
    return f"{param}_{stat}" + ("" if clean else ALL_SUFFIX)


def flag_field(flag_name: str) -> str:
    return f"flag_{flag_name.lower()}"


def _rollup_fields() -> dict[str, Field]:
    out: dict[str, Field] = {}
    for clean in (True, False):
        which = "clean readings" if clean else "every reading, flagged or not"
        for param in ROLLUP_PARAMS:
            unit = PM_FIELDS[param].unit
            for stat in ROLLUP_STATS:
                kind: FieldType = "integer" if stat == "count" else "float"
                out[rollup_field(param, stat, clean)] = Field(
                    rollup_field(param, stat, clean), kind, None if stat == "count" else unit,
                    f"{stat} of {param} over the interval's {which}")
    for channel in contract.CHANNELS:
        out[f"readings_{channel}"] = Field(f"readings_{channel}", "integer", "readings",
                                           f"readings of channel {channel} in the interval")
        out[f"clean_{channel}"] = Field(f"clean_{channel}", "integer", "readings",
                                        f"clean readings of channel {channel} in the interval")
        out[f"window_{channel}"] = Field(f"window_{channel}", "integer", "s",
                                         f"sum of the window of channel {channel}'s readings in the interval"
                                         " (every reading, flagged or not): its data coverage")
    out[QC_OR] = Field(QC_OR, "integer", None, "OR of the qc bits of every reading in the interval")
    for flag in Flag:
        name = flag_field(flag.name or str(int(flag)))
        out[name] = Field(name, "integer", "readings", f"readings carrying the {flag.name} flag")
    return out


#: Every field of :data:`PM_1H` and :data:`PM_1D`.
ROLLUP_FIELDS: dict[str, Field] = _rollup_fields()

#: Dirty marks: the ingest adds, in the same ``/write`` as each batch, one point per
#: (station, hour) the batch touched: time = the ingest's clock at the write [s], tag
#: ``station``, tag ``lag`` (whole hours between the write's hour and the touched hour,
#: so two hours touched in the same second are two series, while the tag's values stay
#: few: a live network writes lag 0 and 1), field ``hour`` (the touched hour's start [s]).
ROLLUP_DIRTY = "rollup_dirty"
#: The worker's durable state: one series, fields ``cursor`` (marks up to here are rolled
#: up [s, the ingest's clock]) and ``covered_until`` (every hour before it is rolled up [s]).
ROLLUP_STATE = "rollup_state"


def dirty_line(station: str, hour: int, written: int) -> bytes:
    """One dirty mark (the ingest builds them vectorised; this is the reference form)."""
    _checked_station(station, ContractError)
    lag = (written // 3600 * 3600 - hour) // 3600
    return f"{ROLLUP_DIRTY},station={station},lag={lag} hour={hour}i {written}\n".encode()


# -- NowCast points (docs/rollups.md) -------------------------------------------------------
#: The US EPA PM2.5 NowCast per station and clock hour, written by the rollup worker from
#: the hourly means of :data:`PM_1H` (clean readings, as /v1/latest computes it): time = the
#: end of the last complete hour it is computed from (the moment it becomes "current"),
#: tag ``station``; fields ``pm25`` (µg/m³, truncated to 0.1 as AirNow reports it),
#: ``aqi`` (integer, US AQI of ``pm25``), ``weight`` (w*, float) and ``hours`` (hours of
#: the 12 that had data, integer). No point where EPA's completeness rule gives no NowCast.
PM_NOWCAST = "pm_nowcast"
NOWCAST_FIELDS = ("pm25", "aqi", "weight", "hours")
#: ``aqi`` of a NowCast above the top of the index (> 325.4 µg/m³, "Beyond the AQI", which
#: the API reports as a null ``aqi``): one above 500, so that a rewritten point never keeps
#: an index from before (line protocol cannot null a field) and a gauge shows it maroon.
NOWCAST_BEYOND_AQI = 501


def nowcast_line(station: str, end: int, value: nowcast.NowCast) -> bytes:
    """The :data:`PM_NOWCAST` point of ``station``'s NowCast whose last complete hour ends at
    ``end`` [s since the UTC epoch, a whole hour]: every field of :data:`NOWCAST_FIELDS`,
    written again whole whenever it is recomputed (idempotent)."""
    _checked_station(station, ContractError)
    if isinstance(end, bool) or not isinstance(end, int) or end % nowcast.HOUR_S:
        raise ValueError(f"a NowCast's time is the end of a whole hour, got {end!r}")
    index = aqi.us_aqi(value.value)
    level = index.value if index is not None and index.value is not None else NOWCAST_BEYOND_AQI
    return (f"{PM_NOWCAST},station={station} pm25={float(value.value)!r},aqi={level}i,"
            f"weight={float(value.weight)!r},hours={int(value.hours)}i {end}\n").encode()


# -- SensorThings Thing ids (docs/sensorthings.md) -------------------------------------------
#: Small, sequential, stable SensorThings Thing ids (1, 2, …, in order of assignment):
#: one point per station, time 0 (so writing it again changes nothing), tag ``station``,
#: field ``id`` (integer). Kept with the rollups (never expires); written by the rollup
#: worker, read by the API.
THING_IDS = "sta_thing"
#: Largest Thing id: a Thing id is the low bits of every Location id and (minus one, times
#: 16) part of every Datastream id, which must stay below 2**31 for Observation ids.
MAX_THING_ID = 2**27 - 1


def assign_thing_ids(existing: Mapping[str, int], stations: Iterable[str]) -> dict[str, int]:
    """Thing id of every station: those in ``existing`` (the :data:`THING_IDS` table) keep
    theirs; the others get ``max + 1``, ``max + 2``, … in sorted station-id order.

    Deterministic, so a reader that may not write (the API) computes the same provisional
    ids the writer (the rollup worker) will persist. A table that lost its invariants (an
    id below 1 or above :data:`MAX_THING_ID`, or two stations on one id after a race of two
    writers) is read as if the offending entries were missing: of two stations on one id,
    the first in sorted order keeps it and the other gets a new one. A station id the
    contract does not allow gets no Thing id (none of our writers stores one).

    Raises
    ------
    ValueError
        More stations than Thing ids (:data:`MAX_THING_ID`).
    """
    kept: dict[str, int] = {}
    taken: set[int] = set()
    for station, tid in sorted(existing.items()):
        if type(tid) is int and 1 <= tid <= MAX_THING_ID and tid not in taken:
            kept[station] = tid
            taken.add(tid)
    top = max(taken, default=0)
    for station in sorted({s for s in stations if contract.is_station_id(s)} - set(kept)):
        top += 1
        if top > MAX_THING_ID:
            raise ValueError(f"no Thing id left for station {station!r} (at most {MAX_THING_ID})")
        kept[station] = top
    return kept


def thing_ids_lines(assigned: Mapping[str, int]) -> bytes:
    """The :data:`THING_IDS` points of ``assigned`` (station -> id), one line each, time 0."""
    out = []
    for station, tid in sorted(assigned.items()):
        _checked_station(station, ContractError)
        if isinstance(tid, bool) or not isinstance(tid, int) or not 1 <= tid <= MAX_THING_ID:
            raise ValueError(f"Thing id of {station!r} must be 1 to {MAX_THING_ID}, got {tid!r}")
        out.append(f"{THING_IDS},station={station} id={tid}i 0\n")
    return "".join(out).encode()
