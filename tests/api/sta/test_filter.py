"""$filter: the grammar (pure), its evaluation on the catalogue and its compilation into
InfluxQL for Observations (on the real InfluxDB)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.errors import ApiError
from api.sta import observations
from api.sta.filter import Geometry, parse_filter, parse_orderby


def test_grammar_precedence_and_literals():
    assert parse_filter("a eq 1 or b eq 2 and not c") == (
        "op", "or", ("op", "eq", ("path", ("a",)), ("lit", 1)),
        ("op", "and", ("op", "eq", ("path", ("b",)), ("lit", 2)), ("not", ("path", ("c",)))))
    assert parse_filter("result add 2 mul 3 gt 10") == (
        "op", "gt", ("op", "add", ("path", ("result",)), ("op", "mul", ("lit", 2), ("lit", 3))), ("lit", 10))
    assert parse_filter("name eq 'O''Hara'")[3] == ("lit", "O'Hara")
    assert parse_filter("resultTime ge 2026-01-01T01:00:00+01:00")[3] == ("lit", datetime(2026, 1, 1, tzinfo=UTC))
    assert parse_filter("notes eq null")[2] == ("path", ("notes",))  # a name that starts with "not"
    geo = parse_filter("st_within(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')")
    assert geo[2][1] == ("lit", Geometry("Polygon", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0))))
    assert parse_orderby("name desc,id") == [(("path", ("name",)), "desc"), (("path", ("id",)), "asc")]


@pytest.mark.parametrize("text, status", [
    ("name eq", 400), ("name eq 'x", 400), ("(" * 60 + "a" + ")" * 60, 400), ("not " * 60 + "a", 400),
    ("name eq '" + "x" * 5000 + "'", 400), ("name eq '" + "x" * 1500 + "'", 400),
    (" or ".join(["a eq 1"] * 300), 400), ("frobnicate(name)", 501), ("now() gt 1", 400),
    ("substring(name, 1) eq 'a'", 501), ("month(phenomenonTime) eq 'x'", 400), ("month()", 400),
    ("date(resultTime) eq 5", 400), ("hour('x') lt 3", 400), ("time(resultTime) lt 24:00:00", 400),
    ("startswith(name)", 400), ("geo.intersects(location, geography'LINESTRING(0 0, 1 1)')", 501),
    ("geo.intersects(location, geography'POINT(x y)')", 400), ("1; DROP DATABASE airquality", 400),
    ("name eq 'a' ; DROP MEASUREMENT pm --", 400), ("resultTime ge 2026-13-45T00:00:00Z", 400),
])
def test_hostile_or_malformed_filters_are_refused_with_a_message(text, status):
    with pytest.raises(ApiError) as err:
        parse_filter(text)
    assert err.value.status == status and err.value.detail


def test_observation_filters_compile_to_influxql_through_the_builders():
    f = observations.compile_filter(parse_filter(
        "phenomenonTime ge 2026-01-01T00:00:00Z and resultTime lt 2026-01-02T00:00:00Z "
        "and (result gt 10 or not (result le 5.5)) and Datastream/name eq 'PM2.5'"))
    assert f.time_parts == ["time >= '2026-01-01T00:00:00Z'", "time < '2026-01-02T00:00:00Z'"]
    assert f.value_condition("pm25") == '("pm25" > 10.0 OR "pm25" > 5.5)'
    assert len(f.scope) == 1
    f = observations.compile_filter(parse_filter("year(phenomenonTime) eq 2026 and result sub 1 mul 2 ge -3"))
    assert f.time_parts == ["time >= '2026-01-01T00:00:00Z'", "time < '2027-01-01T00:00:00Z'"]
    assert f.value_condition("rh") == '("rh" - (1.0 * 2.0)) >= (0.0 - 3.0)'


@pytest.mark.parametrize("text", [
    "resultQuality eq 'SPIKE'", "tolower(result) eq 'x'", "parameters/qc eq 4 or phenomenonTime lt now()",
])
def test_observation_filters_we_cannot_answer_exactly_are_501(text):
    with pytest.raises(ApiError) as err:
        observations.compile_filter(parse_filter(text))
    assert err.value.status == 501 and err.value.detail


def ids_of(sta, url, **params):
    r = sta.get(url, params=params)
    assert r.status_code == 200, r.text
    return r.json()["value"]


def test_filters_on_the_catalogue(sta):
    def names(expr, entity_set="Things"):
        return sorted(t["name"] for t in ids_of(sta, f"/sta/v1.1/{entity_set}", **{"$filter": expr}))

    assert names("startswith(name, 'Lab')") == ["Lab 1"]
    assert names("substringof('aipei', name)") == ["Taipei 2"]
    assert names("endswith(tolower(name), '2')") == ["Taipei 2"]
    assert names("properties/station eq 'lab-3'") == ["lab-3"]
    assert names("Datastreams/name eq 'Temperature'") == ["Lab 1"]
    assert names("length(name) gt 5 and not (name eq 'lab-3')") == ["Taipei 2"]
    assert names("geo.intersects(location, geography'POLYGON((121 25, 122 25, 122 26, 121 26, 121 25))')",
                 "Locations") == ["Taipei 2"]
    assert names("st_within(location, geography'POLYGON((5 52, 6 52, 6 53, 5 53, 5 52))')",
                 "Locations") == ["Lab 1", "Lab 1"]  # both published positions
    assert names("geo.distance(location, geography'POINT(121.5 25.0)') lt 0.1", "Locations") == ["Taipei 2"]
    assert names("Thing/properties/station eq 'lab-2' and name eq 'PM10'", "Datastreams") == ["PM10", "PM10"]
    assert names("unitOfMeasurement/symbol eq 'Cel'", "Datastreams") == ["Temperature"]
    # lab-1's move at 23:30 and lab-3's unlocated one at its first reading (T0)
    assert len(ids_of(sta, "/sta/v1.1/HistoricalLocations", **{"$filter": "time ge 2025-12-31T23:15:00Z"})) == 2


def test_filters_on_observations_run_in_influxdb(sta):
    ds = next(d for d in ids_of(sta, "/sta/v1.1/Datastreams", **{"$filter": "name eq 'PM2.5'"})
              if d["properties"]["station"] == "lab-1")["@iot.id"]
    url = f"/sta/v1.1/Datastreams({ds})/Observations"
    assert [o["result"] for o in ids_of(sta, url, **{"$filter": "result ge 170 and result mod 2 eq 0"})] == \
        [170.0, 172.0, 174.0, 176.0, 178.0]
    assert [o["result"] for o in ids_of(sta, url, **{"$filter": "not (result lt 177)"})] == [177.0, 178.0, 179.0]
    body = sta.get("/sta/v1.1/Observations", params={
        "$filter": "Datastream/Thing/properties/station eq 'lab-2' and Datastream/properties/channel eq 'b' "
                   "and result gt 128", "$count": "true"}).json()
    assert body["@iot.count"] == 1 + 30  # PM2.5 129, and every PM10 (150)
    body = sta.get("/sta/v1.1/Observations", params={
        "$filter": "Datastream/Thing/properties/station eq 'lab-2' and Datastream/properties/channel eq 'b' "
                   "and result gt 128 and Datastream/name eq 'PM2.5'", "$count": "true"}).json()
    assert body["@iot.count"] == 1 and body["value"][0]["result"] == 129.0
    body = sta.get("/sta/v1.1/FeaturesOfInterest", params={"$filter": "properties/station eq 'lab-3'",
                                                            "$expand": "Observations($top=3)"}).json()
    assert len(body["value"][0]["Observations"]) == 3
    assert sta.get(url, params={"$filter": "parameters/qc eq 4"}).status_code == 501


def test_result_compared_with_a_number_written_as_a_string(sta):
    """Annex A's filter tests (and FROST) write result's literal quoted, ``result gt '3'``
    (result is of type Any): a string that is a number compares as that number, others stay 400."""
    ds = next(d for d in ids_of(sta, "/sta/v1.1/Datastreams", **{"$filter": "name eq 'PM2.5'"})
              if d["properties"]["station"] == "lab-1")["@iot.id"]
    url = f"/sta/v1.1/Datastreams({ds})/Observations"
    assert [o["result"] for o in ids_of(sta, url, **{"$filter": "result gt '176'"})] == [177.0, 178.0, 179.0]
    assert [o["result"] for o in ids_of(sta, url, **{"$filter": "'2.5e0' ge result"})] == [0.0, 1.0, 2.0]
    body = sta.get(url, params={"$count": "true", "$top": "1", "$skip": "2", "$orderby": "phenomenonTime asc",
                                "$filter": "result gt '3' and hour(phenomenonTime) eq 0"}).json()
    assert body["@iot.count"] == 56 and [o["result"] for o in body["value"]] == [6.0]
    for text in ("result gt 'x'", "result gt 'nan'", "result eq 'inf'", "result gt ''"):
        assert sta.get(url, params={"$filter": text}).status_code == 400, text
