"""InfluxQL text, built without a database: hostile input never becomes query text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api import influxql

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def test_raw_measurements_text():
    assert influxql.raw_measurements("lab-1", T0, T1, 100) == (
        "SELECT * FROM \"pm\" WHERE \"station\" = 'lab-1' AND time >= '2026-01-01T00:00:00Z' "
        "AND time < '2026-01-02T00:00:00Z' ORDER BY time ASC LIMIT 100"
    )


@pytest.mark.parametrize("station", ["x' OR 1=1 --", "a;DROP DATABASE airquality", "/.*/", "a\nb", "A", ""])
def test_hostile_station_ids_are_refused(station):
    with pytest.raises(influxql.QueryError):
        influxql.raw_measurements(station, T0, T1, 10)


def test_literal_escapes_quotes_and_backslashes():
    assert influxql.literal("it's \\ ok") == "'it\\'s \\\\ ok'"
    with pytest.raises(influxql.QueryError):
        influxql.literal("two\nlines")


def test_identifiers_only_from_the_fixed_list():
    assert influxql.ident("pm25", influxql.FIELDS) == '"pm25"'
    with pytest.raises(influxql.QueryError):
        influxql.ident('pm25" FROM x; --', influxql.FIELDS)


def test_naive_times_are_utc():
    assert influxql.time_literal(datetime(2026, 1, 1, 12)) == "'2026-01-01T12:00:00Z'"
