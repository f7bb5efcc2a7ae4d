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

from firmware_bridge import contract
from ingest.quality import Flag

#: Bumped when a column changes meaning or type; it names the folder (``archive/v1``).
VERSION = 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PM25_METHODS = ("none", "epa_barkjohn_2021", "epa_barkjohn_2022_smoke", "nilson_2022_kohler",
                "uncorrected_atm")

_FLAG_TEXT = {
    Flag.OUT_OF_RANGE: "a mass concentration is negative or above the sensor's range",
    Flag.FLAT_LINE: "PM2.5 unchanged for several consecutive windows",
    Flag.SPIKE: "PM2.5 is an outlier against the preceding windows (Hampel filter)",
    Flag.HIGH_HUMIDITY: "relative humidity above the threshold (hygroscopic growth inflates PM)",
    Flag.CLOCK_UNSYNCED: "the station's clock was not known good",
    Flag.FUTURE_TIMESTAMP: "timestamp ahead of the ingest's clock",
    Flag.AB_DISAGREEMENT: "channels a and b of the station disagree (US EPA criterion)",
    Flag.LOW_COVERAGE: "fewer frames averaged than 75 % of what the window should hold",
    Flag.UNCORRECTED: "informational: pm25 is the sensor's own value (no correction applied)",
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # "time", "string", "float", "integer", "boolean"
    unit: str | None
    description: str
    constraints: tuple[tuple[str, Any], ...] = ()


def qc_description() -> str:
    bits = "; ".join(f"bit {int(f).bit_length() - 1} ({int(f)}) {f.name}: {_FLAG_TEXT[f]}" for f in Flag)
    return ("quality flags, a bitmask; 0 = no flag. A reading with any bit but UNCORRECTED set is "
            f"flagged (kept, never dropped). {bits}")


def _measured(name: str, unit: str) -> Column:
    return Column(name, "float", unit, f"{name}, window mean as the sensor reports it")


def _columns() -> tuple[Column, ...]:
    measured = contract.MEASURED_FIELDS
    head = [
        Column("time", "time", None, "end of the averaging window, UTC", (("required", True),)),
        Column("station", "string", None, "station id",
               (("required", True), ("pattern", contract.STATION_ID_PATTERN))),
        Column("sensor", "string", None, "sensor model",
               (("required", True), ("enum", list(contract.SENSORS)))),
        Column("channel", "string", None, "sensor channel of the station (a, or b for a second sensor)",
               (("required", True), ("enum", list(contract.CHANNELS)))),
        # No minimum: pm25 is the sensor's own value where no correction applies, and a faulty
        # sensor's negative value is kept and flagged (qc bit 0), never dropped or clipped.
        Column("pm25", "float", "µg/m³", "PM2.5 corrected for humidity where a published correction "
                                          "applies (see pm25_method); docs/quality.md"),
        Column("pm25_method", "string", None, "the correction that produced pm25",
               (("enum", list(PM25_METHODS)),)),
        Column("qc", "integer", None, qc_description(), (("minimum", 0),)),
        *(_measured(name, unit) for name, unit in measured.items()),
        Column("window", "integer", "s", "length of the averaging window", (("minimum", 1),)),
        Column("n", "integer", "frames", "sensor frames averaged in the window", (("minimum", 0),)),
        Column("seq", "integer", None, "the bridge's reading counter", (("minimum", 0),)),
        Column("boot", "integer", None, "the bridge's boot counter", (("minimum", 0),)),
        Column("synced", "boolean", None, "the station's clock was known good"),
    ]
    stats = [Column(f"{name}_{stat}", "float", unit, f"{stat}imum of {name} within the window (when sent)")
             for name, unit in measured.items() for stat in contract.STAT_KEYS]
    return (*head, *stats)


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
