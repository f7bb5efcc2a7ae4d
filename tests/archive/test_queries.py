"""The archive's InfluxQL text and its table layout, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from archive import schema
from archive.build import day_paths, is_final
from civicair import influxql
from civicair.schema import contract
from civicair.schema.qc import Flag

START, END = datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)


def test_archive_readings_query_streams_series_per_station():
    assert influxql.archive_readings(START, END) == (
        "SELECT * FROM \"pm\" WHERE time >= '2026-11-29T00:00:00Z' AND time < '2026-11-30T00:00:00Z' "
        'GROUP BY "station"')


def test_archive_fingerprint_and_day_counts_queries():
    assert influxql.archive_fingerprint(START, END) == (
        'SELECT count("n") AS "rows", sum("seq") AS "seq", sum("qc") AS "qc", sum("n") AS "n" FROM "pm" '
        "WHERE time >= '2026-11-29T00:00:00Z' AND time < '2026-11-30T00:00:00Z'")
    assert influxql.archive_day_counts(START, END) == (
        "SELECT count(\"n\") AS \"rows\" FROM \"pm\" WHERE time >= '2026-11-29T00:00:00Z' "
        "AND time < '2026-11-30T00:00:00Z' GROUP BY time(1d) fill(none)")


def test_every_stored_field_is_a_typed_column_and_the_table_schema_says_its_unit():
    names = set(schema.NAMES)
    assert set(contract.MEASURED_FIELDS) <= names
    assert {f"{m}_{s}" for m in contract.MEASURED_FIELDS for s in contract.STAT_KEYS} <= names
    assert {"pm25", "pm25_method", "qc", "n", "seq", "boot", "window", "synced"} <= names
    assert schema.NAMES[:4] == ("time", "station", "sensor", "channel")
    assert schema.ARROW_SCHEMA.field("qc").type == pa.int64() and schema.ARROW_SCHEMA.field("pm25").type == pa.float64()
    fields = {f["name"]: f for f in schema.table_schema()["fields"]}
    assert fields["pm25"]["description"].endswith("[µg/m³]") and fields["rh"]["unit"] == "%"
    assert fields["time"] == {"name": "time", "type": "datetime", "description": "end of the averaging window, UTC",
                              "format": "%Y-%m-%dT%H:%M:%SZ", "constraints": {"required": True}}
    assert schema.table_schema()["primaryKey"] == ["station", "channel", "time"]
    for flag in Flag:  # every qc bit explained
        assert f"({int(flag)}) {flag.name}:" in fields["qc"]["description"]


def test_day_paths_are_hive_partitioned_and_finality_follows_the_spool_age():
    assert day_paths(date(2026, 11, 29)) == {"parquet": "readings/year=2026/month=11/2026-11-29.parquet",
                                             "csv": "readings-csv/year=2026/month=11/2026-11-29.csv.gz"}
    assert not is_final(date(2026, 11, 29), date(2026, 12, 30), 31)
    assert is_final(date(2026, 11, 29), date(2026, 12, 31), 31)
