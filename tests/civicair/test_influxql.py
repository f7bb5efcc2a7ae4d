"""InfluxQL text, built without a database: hostile input never becomes query text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from civicair import influxql

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


# -- builders -----------------------------------------------------------------------------


def test_aggregate_text_with_quality_filter_group_by_and_tz():
    assert influxql.select_aggregates(
        ["pm25", "pm25_raw"], ["mean", "count"], [influxql.station_eq("lab-1"), influxql.time_range(T0, T1),
                                                  influxql.clean_only()], "1d", False, "Europe/Amsterdam",
    ) == (
        'SELECT ROUND(MEAN("pm25") * 100) / 100 AS "pm25_mean", COUNT("pm25") AS "pm25_count", '
        'ROUND(MEAN("pm25_atm") * 100) / 100 AS "pm25_raw_mean", COUNT("pm25_atm") AS "pm25_raw_count" FROM "pm" '
        "WHERE \"station\" = 'lab-1' AND time >= '2026-01-01T00:00:00Z' AND time < '2026-01-02T00:00:00Z' "
        "AND \"qc\" & 9223372036854775551 = 0 "
        "GROUP BY time(1d) fill(none) tz('Europe/Amsterdam')"
    )


def test_means_and_medians_are_rounded_by_unit_and_stored_values_are_not():
    assert influxql.aggregate_columns(["rh", "hcho", "n0_3"], ["median", "max"]) == (
        'ROUND(MEDIAN("rh") * 100) / 100 AS "rh_median", MAX("rh") AS "rh_max", '
        'ROUND(MEDIAN("hcho") * 10000) / 10000 AS "hcho_median", MAX("hcho") AS "hcho_max", '
        'ROUND(MEDIAN("n0_3") * 10) / 10 AS "n0_3_median", MAX("n0_3") AS "n0_3_max"'
    )
    assert influxql.aggregate_columns(["pm25"], ["mean"], rounded=False) == 'MEAN("pm25") AS "pm25_mean"'
    assert {influxql.decimals(p) for p in influxql.PARAMS} <= {1, 2, 3, 4}


def test_many_stations_are_an_or_of_quoted_literals_not_a_regex():
    assert influxql.stations_in(["a", "b-2"]) == "(\"station\" = 'a' OR \"station\" = 'b-2')"
    with pytest.raises(influxql.QueryError):
        influxql.stations_in(["a", "b/.*/"])


def test_raw_columns_alias_parameters_and_keep_qc_and_tags():
    assert influxql.raw_columns(["pm25_raw", "rh"]) == (
        '"pm25_atm" AS "pm25_raw", "rh", "qc", "station", "sensor", "channel"')
    assert influxql.raw_columns(None) == "*"


def test_unknown_names_never_become_identifiers():
    for bad in ('pm25"', "pm25 OR 1=1", "qc"):
        with pytest.raises(influxql.QueryError):
            influxql.aggregate_columns([bad], ["mean"])
    with pytest.raises(influxql.QueryError):
        influxql.aggregate_columns(["pm25"], ["mean); DROP"])
    with pytest.raises(influxql.QueryError):
        influxql.select_aggregates(["pm25"], ["mean"], [], "1m; DROP", False)


def test_time_zone_must_be_on_the_hosts_list():
    assert influxql.tz_clause(None) == "" and influxql.tz_clause("UTC") == ""
    assert influxql.tz_clause("America/New_York") == " tz('America/New_York')"
    with pytest.raises(influxql.QueryError):
        influxql.tz_clause("Europe/Atlantis')")


def test_flagged_mask_keeps_only_the_uncorrected_bit():
    assert influxql.QC_FLAGGED_MASK & influxql.QC_INFORMATIONAL == 0
    assert influxql.QC_FLAGGED_MASK | influxql.QC_INFORMATIONAL == 2**63 - 1


def test_flagged_mask_agrees_with_the_flag_bits():
    from civicair.schema.qc import Flag

    assert Flag.UNCORRECTED.value == influxql.QC_INFORMATIONAL
    for flag in Flag:
        if flag is not Flag.UNCORRECTED:
            assert flag.value & influxql.QC_FLAGGED_MASK


def test_latest_statement_selects_the_fields_at_the_last_pm25():
    assert influxql.latest([influxql.time_from(T0)]) == (
        'SELECT last("pm25") AS "pm25", "qc", "sensor", "channel" FROM "pm" '
        "WHERE time >= '2026-01-01T00:00:00Z' GROUP BY \"station\""
    )
    assert influxql.latest([], ["pm25_raw", "qc", "rh"]).startswith(
        'SELECT last("pm25") AS "pm25", "pm25_atm" AS "pm25_raw", "rh", "qc", "sensor", "channel" FROM')


# -- filters emit their own fragments ----------------------------------------------------------


def test_filters_compose_their_fragments():
    from api.filters import MeasurementsQuery, StationMeasurementsQuery

    q = StationMeasurementsQuery.model_validate({"from": "2026-01-01", "to": "2026-01-02", "interval": "1h"})
    assert q.fragments() == [
        "time >= '2026-01-01T00:00:00Z' AND time < '2026-01-02T00:00:00Z'",
        '"qc" & 9223372036854775551 = 0',
    ]
    q = StationMeasurementsQuery.model_validate({"from": "2026-01-01", "to": "2026-01-02",
                                                 "cursor": "2026-01-01T06:00:00Z"})
    assert set(q.fragments()) == {
        "time >= '2026-01-01T00:00:00Z' AND time < '2026-01-02T00:00:00Z'",
        "time >= '2026-01-01T06:00:00Z'",  # the cursor: raw readings include flagged ones by default
    }
    q = MeasurementsQuery.model_validate({"stations": "a,b,a", "from": "2026-01-01T01:00:00+01:00",
                                          "to": "2026-01-02", "tz": "Europe/Amsterdam",
                                          "include_flagged": "true"})
    assert q.fragments() == [
        "time >= '2026-01-01T00:00:00Z' AND time < '2026-01-01T23:00:00Z'",  # naive `to` is local midnight
        "(\"station\" = 'a' OR \"station\" = 'b')",
    ]
