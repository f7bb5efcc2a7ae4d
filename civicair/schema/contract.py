"""Wire contract v1: MQTT topics, topic kinds and reading payloads.

The contract between the bridge (producer) and the ingest (consumer). Standard library
only: it runs on a Pi with the ``bridge`` extra alone, and in the ingest without the
bridge's serial stack. ``firmware_bridge.contract`` re-exports it for the bridge's code.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from functools import partial
from itertools import chain, compress, repeat
from operator import attrgetter, is_not, itemgetter, methodcaller
from typing import Any

from civicair.schema import sensors
from civicair.schema.errors import ContractError

WIRE_VERSION = 1
TOPIC_ROOT = "civicair/v1"
DEADLETTER_TOPIC = f"{TOPIC_ROOT}/_deadletter"

STATION_ID_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
_STATION_ID_RE = re.compile(STATION_ID_PATTERN + r"\Z")

SENSORS: tuple[str, ...] = sensors.MODELS  # pms5003 … sps30, see civicair.schema.sensors
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
HEADER_FIELDS: dict[str, type] = {
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
#: Nor after this (2100-01-01T00:00:00Z): InfluxDB cannot store a time past 2262,
#: and a clock that far ahead is broken, not early.
LATEST_TS = 4102444800
#: Integer header fields are stored as InfluxDB integers: signed 64-bit.
MAX_INT = 2**63 - 1


def is_station_id(value: object) -> bool:
    return isinstance(value, str) and _STATION_ID_RE.match(value) is not None


def readings_topic(station: str) -> str:
    return f"{TOPIC_ROOT}/{_checked(station)}/readings"


def status_topic(station: str) -> str:
    return f"{TOPIC_ROOT}/{_checked(station)}/status"


def meta_topic(station: str) -> str:
    return f"{TOPIC_ROOT}/{_checked(station)}/meta"


def stored_topic(station: str) -> str:
    return f"{TOPIC_ROOT}/{_checked(station)}/stored"


def readings_subscription() -> str:
    return f"{TOPIC_ROOT}/+/readings"


#: What a ``civicair/v1/{station}/{kind}`` topic carries: readings (QoS 1, batches of
#: JSON objects), status (retained ``online``/``offline``), meta (retained JSON object),
#: stored (QoS 1, not retained, ingest -> station: which readings InfluxDB holds; see
#: :func:`encode_stored`).
READINGS, STATUS, META, STORED = "readings", "status", "meta", "stored"
TOPIC_KINDS = (READINGS, STATUS, META, STORED)
_TOPIC_KIND_SET = frozenset(TOPIC_KINDS)


def topic_kind(topic: str) -> str | None:
    """The kind of a topic (its last level, one of :data:`TOPIC_KINDS`), or None.

    Cheap, for sorting messages: it does not check the station id; the decoders call
    :func:`station_from_topic`, which does.
    """
    kind = topic.rpartition("/")[2]
    return kind if kind in _TOPIC_KIND_SET else None


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


def validate_reading(obj: Any, topic_station: str | None = None,
                     latest_ts: int = LATEST_TS) -> dict[str, Any]:
    """Check one decoded reading against contract v1 and return it.

    ``latest_ts``: a receiver's own, tighter bound on ``ts`` (the ingest: its clock plus
    a day), so a station with a wrong clock cannot make InfluxDB open shards for years
    ahead.

    Raises :class:`ContractError` with a reason a human can act on. Unknown keys
    are refused rather than dropped silently: a producer that sends them has a
    bug worth seeing in the dead letter.

    The ingest checks whole batches with :func:`readings_keep_contract`: a rule added
    here goes there too (tests/firmware_bridge/test_contract.py checks they agree).
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
    if obj["ts"] > LATEST_TS:
        raise ContractError(f"ts {obj['ts']} is after 2100-01-01 (InfluxDB cannot store times past 2262)")
    if obj["ts"] > latest_ts:
        raise ContractError(f"ts {obj['ts']} is ahead of the receiver's clock by more than its limit "
                            f"(latest accepted: {latest_ts}); the station's clock is wrong")
    if obj["window"] <= 0 or obj["n"] < 0 or obj["seq"] < 0 or obj["boot"] < 0:
        raise ContractError("window must be > 0; n, seq and boot must be >= 0")
    for name in _BOUNDED_INTS:
        if obj[name] > MAX_INT:
            raise ContractError(f"field {name!r} must fit 64 bits (at most 2**63 - 1), got {obj[name]!r}")
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


def readings_keep_contract(readings: list[Any], topic_stations: Sequence[str] | None = None,
                           latest_ts: int = LATEST_TS) -> bool:
    """True if every reading keeps the contract (each from the station beside it in
    ``topic_stations``, when given); False if one may not.

    The rules of :func:`validate_reading`, checked column by column over a whole batch,
    so that the ingest does not pay them reading by reading: the loops over readings
    and values run in C (``map``, ``set``, ``zip``, ``min``), about 2 µs a reading
    instead of 7 for :func:`validate_reading` on each. False says only that some
    reading may break the contract; :func:`validate_reading` on each finds it and
    gives the reason. (It also says False for a few valid but unusual readings, e.g.
    an ``int`` subclass, finite values whose sum overflows: those then pass there.)
    A rule added to :func:`validate_reading` must be added here too.
    """
    if not readings:
        return True
    if set(map(type, readings)) != {dict}:
        return False
    keys = set().union(*readings)
    if not keys <= _KNOWN_KEYS:
        return False
    try:
        header = list(zip(*map(_header_values, readings), strict=True))  # transposed: columns
    except KeyError:  # a header field is missing
        return False
    for column, kind in zip(header, HEADER_FIELDS.values(), strict=True):
        if set(map(type, column)) != {kind}:  # exact: a bool is not an int, nor an int a bool
            return False
    v, station, sensor, channel, ts, window, n, seq, boot, _synced = header
    if set(v) != {WIRE_VERSION} or not set(sensor) <= _SENSOR_SET or not set(channel) <= _CHANNEL_SET:
        return False
    if topic_stations is not None and station != tuple(topic_stations):
        return False
    if not all(map(is_station_id, set(station))):
        return False
    if (min(ts) < EARLIEST_TS or max(ts) > min(LATEST_TS, latest_ts) or min(window) <= 0
            or min(n) < 0 or min(seq) < 0 or min(boot) < 0
            or max(max(window), max(n), max(seq), max(boot)) > MAX_INT):
        return False
    # Measured values, reading after reading: None where a field is absent or null.
    names = tuple(keys & _MEASURED_KEYS)  # the fields some reading carries
    values = _row_after_row(readings, names)
    types = set(map(type, values))
    if not types <= _VALUE_TYPES:
        return False
    gaps = type(None) in types
    if not _finite_sum(filter(_is_not_none, values) if gaps else values):
        return False
    if gaps:
        # n > 0 needs a measured value: a row of nothing but None has none.
        rows = zip(*[iter(values)] * len(names), strict=True)  # one tuple per reading
        empty = map(int.__eq__, map(tuple.count, rows, repeat(None)), repeat(len(names)))
        if any(compress(n, empty)):  # n >= 0 here, so truthy means > 0
            return False
    if not names and any(n):
        return False
    for stat in STAT_KEYS:
        if stat in keys:
            stats = list(map(methodcaller("get", stat, _NO_STATS), readings))  # absent = no extremes
            if set(map(type, stats)) != {dict} or not set().union(*stats) <= _MEASURED_KEYS:
                return False
            extremes = list(chain.from_iterable(map(dict.values, stats)))
            if not set(map(type, extremes)) <= _STAT_VALUE_TYPES or not _finite_sum(extremes):
                return False
    return True


_BOUNDED_INTS = ("window", "n", "seq", "boot")
_HEADER_KEYS = frozenset(HEADER_FIELDS)
_MEASURED_KEYS = frozenset(MEASURED_FIELDS)
_KNOWN_KEYS = _HEADER_KEYS | _MEASURED_KEYS | frozenset(STAT_KEYS)
_header_values = itemgetter(*HEADER_FIELDS)
_getter = attrgetter("get")
_VALUE_TYPES = frozenset({float, int, type(None)})
_STAT_VALUE_TYPES = frozenset({float, int})
_SENSOR_SET = frozenset(SENSORS)
_CHANNEL_SET = frozenset(CHANNELS)
_NO_STATS: dict[str, Any] = {}
_is_not_none = partial(is_not, None)  # a C call, unlike a lambda


def _row_after_row(dicts: list[dict[str, Any]], names: tuple[str, ...]) -> list[Any]:
    """The values of ``names`` in each dict, dict after dict; None where one is absent."""
    if len(names) > 1:
        try:
            return list(chain.from_iterable(map(itemgetter(*names), dicts)))
        except KeyError:  # not every dict has every name
            pass
    return list(chain.from_iterable(map(map, map(_getter, dicts), repeat(names))))


def _finite_sum(numbers: Iterable[Any]) -> bool:
    # A finite sum means every term is finite: inf and NaN survive addition. The
    # converse fails only for huge finite values, which validate_reading then accepts.
    try:
        return math.isfinite(sum(numbers))
    except OverflowError:  # an int too large for a float
        return False


def _check_stats(key: str, stats: Any) -> None:
    if not isinstance(stats, dict):
        raise ContractError(f"field {key!r} must be an object of field -> number")
    for name, value in stats.items():
        if name not in MEASURED_FIELDS:
            raise ContractError(f"unknown field {name!r} in {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ContractError(f"{key}.{name} must be a finite number, got {value!r}")


# -- stored confirmations (ingest -> station) ------------------------------------------
#
# ``civicair/v1/{station}/stored``, QoS 1, not retained, published by the ingest after
# InfluxDB accepted a batch, one message per station per batch:
#
#     {"v": 1, "station": "lab-1",
#      "stored": [{"channel": "a", "boot": 3, "seq": [[0, 41], [43, 50]]}]}
#
# ``seq`` holds inclusive ranges of stored ``seq`` numbers of one channel and boot,
# ascending and not touching (coalesced). Ranges, not a "highest contiguous seq": a
# reading the ingest cannot store (a dead letter) must not hold back the confirmation
# of every later one.
#
# Compatibility: ``v`` is this format's version, independent of the readings' ``v``.
# Within v1, new keys may be added (at the top or in an entry); a receiver ignores keys
# it does not know. A receiver ignores a whole message whose ``v`` it does not know:
# ignoring a confirmation is always safe (the bridge keeps the readings and resends
# them), deleting on a misread one would not be. An incompatible change takes v=2.

STORED_VERSION = 1
#: Ranges in one confirmation at most: bounds what a bridge parses. The ingest splits
#: a station's confirmation that would hold more over several messages.
MAX_STORED_RANGES = 4096

#: (channel, boot) -> ascending, coalesced inclusive (first, last) ``seq`` ranges.
StoredRanges = dict[tuple[str, int], list[tuple[int, int]]]


def encode_stored(station: str, ranges: StoredRanges) -> bytes:
    """The payload of a confirmation for ``station`` (see the format above)."""
    _checked(station)
    entries = [{"channel": channel, "boot": boot, "seq": [[lo, hi] for lo, hi in spans]}
               for (channel, boot), spans in sorted(ranges.items()) if spans]
    return json.dumps({"v": STORED_VERSION, "station": station, "stored": entries},
                      separators=(",", ":")).encode()


def decode_stored(payload: bytes, topic_station: str | None = None) -> StoredRanges:
    """The ranges of a confirmation, checked; :class:`ContractError` with the reason if
    it is not one this receiver understands (then it must be ignored, never half-used)."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContractError(f"stored confirmation is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ContractError(f"stored confirmation must be a JSON object, got {type(doc).__name__}")
    version = doc.get("v")
    if type(version) is not int:
        raise ContractError(f"stored confirmation: 'v' must be an integer, got {version!r}")
    if version != STORED_VERSION:
        raise ContractError(f"unsupported stored confirmation version v={version} "
                            f"(this receiver understands v={STORED_VERSION}); ignored")
    station = doc.get("station")
    if not is_station_id(station):
        raise ContractError(f"stored confirmation: station id {station!r} must match {STATION_ID_PATTERN}")
    if topic_station is not None and station != topic_station:
        raise ContractError(f"stored confirmation for station {station!r} "
                            f"differs from topic station {topic_station!r}")
    entries = doc.get("stored")
    if not isinstance(entries, list):
        raise ContractError("stored confirmation: 'stored' must be a list of "
                            "{channel, boot, seq: [[first, last], ...]}")
    out: StoredRanges = {}
    count = 0
    for entry in entries:
        if not isinstance(entry, dict):
            raise ContractError(f"stored confirmation: entry must be an object, got {entry!r}")
        channel, boot, spans = entry.get("channel"), entry.get("boot"), entry.get("seq")
        if channel not in CHANNELS:
            raise ContractError(f"stored confirmation: channel must be 'a' or 'b', got {channel!r}")
        if type(boot) is not int or not 0 <= boot <= MAX_INT:
            raise ContractError(f"stored confirmation: boot must be an integer >= 0, got {boot!r}")
        if (channel, boot) in out:
            raise ContractError(f"stored confirmation: channel {channel!r} boot {boot} appears twice")
        if not isinstance(spans, list) or not spans:
            raise ContractError("stored confirmation: 'seq' must be a non-empty list of [first, last]")
        count += len(spans)
        if count > MAX_STORED_RANGES:
            raise ContractError(f"stored confirmation holds more than {MAX_STORED_RANGES} ranges")
        checked: list[tuple[int, int]] = []
        for span in spans:
            if (not isinstance(span, list) or len(span) != 2
                    or not all(type(x) is int and 0 <= x <= MAX_INT for x in span)):
                raise ContractError(f"stored confirmation: seq range {span!r} must be [first, last], "
                                    "integers >= 0")
            lo, hi = span
            if lo > hi:
                raise ContractError(f"stored confirmation: seq range [{lo}, {hi}] runs backwards")
            if checked and lo <= checked[-1][1] + 1:
                raise ContractError(f"stored confirmation: seq range [{lo}, {hi}] overlaps or touches "
                                    "the one before (ranges must be ascending and coalesced)")
            checked.append((lo, hi))
        out[(channel, boot)] = checked
    return out
