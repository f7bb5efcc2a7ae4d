"""The archive's one table layout: columns, their Arrow types, and their Table Schema.

Every daily file (Parquet and CSV.gz) has exactly these columns in this order, whatever
fields a day happened to store, so that every reader sees one dataset: a field no reading
of the day carries is an all-empty column. The stored fields come from the storage schema
(measurement ``pm``); the Table Schema is generated from the same table, with each unit in
its field's description and the ``qc`` bits listed.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from civicair.schema import contract, qc, storage

#: Bumped when a column changes meaning or type; it names the folder (``archive/v1``).
VERSION = 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # "time", "string", "float", "integer", "boolean"
    unit: str | None
    description: str
    constraints: tuple[tuple[str, Any], ...] = ()


def qc_description() -> str:
    bits = "; ".join(f"bit {int(f).bit_length() - 1} ({int(f)}) {f.name}: {qc.TEXT[f].explanation}"
                     for f in qc.Flag)
    return ("quality flags, a bitmask; 0 = no flag. A reading with any bit but UNCORRECTED set is "
            f"flagged (kept, never dropped). {bits}")


#: Constraints the stored values keep (the contract's and the ingest's rules). No minimum
#: on pm25: where no correction applies it is the sensor's own value, and a faulty sensor's
#: negative value is kept and flagged (qc bit 0), never dropped or clipped.
_CONSTRAINTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "pm25_method": (("enum", list(storage.PM25_METHODS)),),
    "qc": (("minimum", 0),),
    "window": (("minimum", 1),),
    "n": (("minimum", 0),),
    "seq": (("minimum", 0),),
    "boot": (("minimum", 0),),
}
#: The stored fields in the archive's order: the corrected value and its flags first, then
#: the sensor's values, then the reading's header.
_FIELD_ORDER = ("pm25", "pm25_method", "qc", *contract.MEASURED_FIELDS,
                "window", "n", "seq", "boot", "synced")


#: Stored fields added after the archive's first layout, in the order added.
_ADDED_FIELDS = ("climate",)


def _stored(name: str) -> Column:
    f = storage.PM_FIELDS[name]
    description = qc_description() if name == "qc" else f.description
    return Column(name, f.type, f.unit, description, _CONSTRAINTS.get(name, ()))


def _columns() -> tuple[Column, ...]:
    head = [
        Column("time", "time", None, "end of the averaging window, UTC", (("required", True),)),
        Column("station", "string", None, "station id",
               (("required", True), ("pattern", contract.STATION_ID_PATTERN))),
        Column("sensor", "string", None, "sensor model",
               (("required", True), ("enum", list(contract.SENSORS)))),
        Column("channel", "string", None, "sensor channel of the station (a, or b for a second sensor)",
               (("required", True), ("enum", list(contract.CHANNELS)))),
    ]
    stats = [Column(f"{name}_{stat}", "float", unit, f"{stat}imum of {name} within the window (when sent)")
             for name, unit in contract.MEASURED_FIELDS.items() for stat in contract.STAT_KEYS]
    # Columns added after v1 first shipped go last, so a v1 reader's column positions hold
    # (the wire contract's rule for optional fields): ``climate`` (issue 12).
    return (*head, *map(_stored, _FIELD_ORDER), *stats, *map(_stored, _ADDED_FIELDS))


COLUMNS: tuple[Column, ...] = _columns()
NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
#: Columns that come from the series' tags rather than its fields (series per station).
TAG_COLUMNS = ("station",)
PRIMARY_KEY = ("station", "channel", "time")

#: Time as timestamp[ms, UTC]: Parquet's coarsest time unit is the millisecond (a [s] column
#: is stored as [ms] and read back so by pyarrow, pandas and DuckDB alike); every value is
#: a whole second.
_ARROW = {"time": pa.timestamp("ms", tz="UTC"), "string": pa.string(), "float": pa.float64(),
          "integer": pa.int64(), "boolean": pa.bool_()}
_TABLE_TYPE = {"time": "datetime", "string": "string", "float": "number", "integer": "integer",
               "boolean": "boolean"}

#: The Parquet file's schema (typed columns; time as timestamp[ms, UTC]).
ARROW_SCHEMA = pa.schema([pa.field(c.name, _ARROW[c.kind], nullable=c.name not in PRIMARY_KEY + ("sensor",))
                          for c in COLUMNS])
#: The CSV writer's schema: the same, with time as ISO 8601 text ending in ``Z``.
CSV_SCHEMA = pa.schema([pa.field(c.name, pa.string() if c.kind == "time" else _ARROW[c.kind])
                        for c in COLUMNS])


def table_schema() -> dict[str, Any]:
    """The Frictionless Table Schema of a daily readings file."""
    fields = []
    for c in COLUMNS:
        field: dict[str, Any] = {"name": c.name, "type": _TABLE_TYPE[c.kind],
                                 "description": c.description + (f" [{c.unit}]" if c.unit else "")}
        if c.kind == "time":
            field["format"] = TIME_FORMAT
        if c.unit:
            field["unit"] = c.unit
        if c.constraints:
            field["constraints"] = dict(c.constraints)
        fields.append(field)
    return {"fields": fields, "primaryKey": list(PRIMARY_KEY), "missingValues": [""]}


# -- stations.csv ---------------------------------------------------------------------------

STATION_COLUMNS: tuple[Column, ...] = (
    Column("station", "string", None, "station id", (("required", True), ("unique", True),
                                                     ("pattern", contract.STATION_ID_PATTERN))),
    Column("name", "string", None, "display name"),
    Column("lat", "float", "°", "latitude, WGS 84; rounded to 3 decimals (about 100 m) unless "
                                "exact_location", (("minimum", -90), ("maximum", 90))),
    Column("lon", "float", "°", "longitude, WGS 84; rounded like lat", (("minimum", -180), ("maximum", 180))),
    Column("exact_location", "boolean", None, "the host opted in to publishing the exact position"),
    Column("sensors_a", "string", None, "sensor model on channel a"),
    Column("sensors_b", "string", None, "sensor model on channel b"),
    Column("firmware", "string", None, "sensor or board firmware"),
    Column("software", "string", None, "bridge software version"),
    Column("licence", "string", None, "data licence of this station (SPDX id) when it differs from the "
                                      "package's"),
    Column("duty_period", "integer", "s", "a duty-cycled station measures one window per period "
                                          "(empty: always on)",
           (("minimum", 1),)),
)
STATION_ARROW_SCHEMA = pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in STATION_COLUMNS])


def station_table_schema() -> dict[str, Any]:
    fields = []
    for c in STATION_COLUMNS:
        field: dict[str, Any] = {"name": c.name, "type": _TABLE_TYPE[c.kind],
                                 "description": c.description + (f" [{c.unit}]" if c.unit else "")}
        if c.constraints:
            field["constraints"] = dict(c.constraints)
        fields.append(field)
    return {"fields": fields, "primaryKey": ["station"], "missingValues": [""]}
