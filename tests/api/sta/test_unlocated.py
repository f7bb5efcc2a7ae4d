"""Stations that published no position (readings only, no meta, or a meta without one): every
Thing still has a Location and a HistoricalLocation and every Observation a FeatureOfInterest,
with a GeoJSON Feature whose geometry is null (RFC 7946 3.2) rather than an invented position;
spatial functions never match it and never fail on it."""

from __future__ import annotations

import pytest

from api.sta import filter as sta_filter
from api.sta import ids
from api.sta.model import SETS, unlocated
from civicair.schema.storage import meta_to_line
from tests.api.conftest import T0, make_client, pm_line, write
from tests.api.sta.test_core import _walk, thing_of

WORLD = "geography'POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))'"
HERE = "geography'POINT(5.2 52.1)'"


def get(client, url, **params):
    r = client.get(url, params=params or None)
    assert r.status_code == 200, (url, params, r.text[:300])
    return r.json()


def test_a_station_without_position_has_one_unlocated_location_and_historical_location(sta):
    thing = thing_of(sta, "lab-3")
    tid = thing["@iot.id"]
    (location,) = get(sta, f"/sta/v1.1/Things({tid})/Locations")["value"]
    assert location["@iot.id"] == ids.location_id(tid, 0) == tid
    assert location["location"] == {"type": "Feature", "geometry": None, "properties": {"station": "lab-3"}}
    assert location["encodingType"] == "application/geo+json"
    assert "not published" in location["description"] and location["properties"]["positionPublished"] is False
    (hl,) = get(sta, f"/sta/v1.1/Things({tid})/HistoricalLocations")["value"]
    assert hl["@iot.id"] == location["@iot.id"] and hl["time"] == "2026-01-01T00:00:00Z"  # first reading, T0
    assert get(sta, f"/sta/v1.1/HistoricalLocations({hl['@iot.id']})/Locations")["value"] == [location]
    assert get(sta, f"/sta/v1.1/Locations({tid})/Things")["value"][0]["@iot.id"] == tid
    # its Observations' FeatureOfInterest: the same unlocated Feature; its Datastreams no observedArea
    (ds, *_) = get(sta, f"/sta/v1.1/Things({tid})/Datastreams")["value"]
    assert ds["observedArea"] is None
    obs = get(sta, f"/sta/v1.1/Datastreams({ds['@iot.id']})/Observations", **{"$top": "1"})["value"][0]
    foi = get(sta, f"/sta/v1.1/Observations({obs['@iot.id']})/FeatureOfInterest")
    assert foi["feature"] == location["location"] and foi["encodingType"] == "application/geo+json"
    assert foi["@iot.id"] == tid and "not published" in foi["description"]
    # the stations that published a position are as before
    lab1 = thing_of(sta, "lab-1")["@iot.id"]
    (current,) = get(sta, f"/sta/v1.1/Things({lab1})/Locations")["value"]
    assert current["location"] == {"type": "Point", "coordinates": [5.2, 52.1]}
    assert current["properties"] == {"current": True, "positionPublished": True}


@pytest.mark.parametrize("expr", [
    f"geo.intersects(location, {WORLD})", f"st_intersects(location, {WORLD})", f"st_within(location, {WORLD})",
    f"st_contains({WORLD}, location)", f"st_equals(location, {HERE})", f"st_disjoint(location, {HERE}) eq false",
    f"geo.distance(location, {HERE}) lt 1000", f"geo.distance(location, {HERE}) ge 0",
    f"geo.intersects(location, {HERE}) or geo.distance(location, {HERE}) lt 1000",
    f"st_disjoint(location, {WORLD}) eq false",
])
def test_spatial_functions_never_match_an_unlocated_feature(sta, expr):
    names = {loc["name"] for loc in get(sta, "/sta/v1.1/Locations", **{"$filter": expr})["value"]}
    assert "lab-3" not in names and names  # the located ones still match


def test_a_negated_spatial_condition_does_not_select_an_unlocated_feature_either(sta):
    """OData's null: not of unknown is unknown, so the station without a position is neither
    inside nor outside a polygon; and/or keep their usual answers where one side decides."""
    def names(expr, entity_set="Locations"):
        return sorted(e["name"] for e in get(sta, f"/sta/v1.1/{entity_set}", **{"$filter": expr})["value"])

    taipei = "geography'POLYGON((121 25, 122 25, 122 26, 121 26, 121 25))'"
    assert names(f"not st_within(location, {taipei})") == ["Lab 1", "Lab 1"]
    assert names(f"not st_disjoint(location, {HERE})") == ["Lab 1"]
    # a comparison with null is false (OData), so its negation is true: ask "le" rather than "not gt"
    assert names(f"geo.distance(location, {HERE}) le 1") == ["Lab 1", "Lab 1"]
    assert names(f"not (geo.distance(location, {HERE}) gt 1)") == ["Lab 1", "Lab 1", "lab-3"]
    assert names(f"not geo.intersects(Locations/location, {taipei})", "Things") == ["Lab 1"]
    assert names(f"st_within(location, {taipei}) or name eq 'lab-3'") == ["Taipei 2", "lab-3"]
    assert names(f"not (st_within(location, {taipei}) and name eq 'Taipei 2')") == ["Lab 1", "Lab 1", "lab-3"]
    assert names(f"not (st_within(location, {taipei}) and name eq 'lab-3')") == ["Lab 1", "Lab 1", "Taipei 2"]
    assert names(f"not (st_within(location, {taipei}) and name eq 'nobody')") == ["Lab 1", "Lab 1", "Taipei 2",
                                                                                 "lab-3"]


def test_spatial_filters_through_relations_and_orders_leave_out_or_sort_unlocated_ones(sta):
    things = get(sta, "/sta/v1.1/Things", **{"$filter": f"geo.intersects(Locations/location, {WORLD})"})
    assert sorted(t["properties"]["station"] for t in things["value"]) == ["lab-1", "lab-2"]
    fois = get(sta, "/sta/v1.1/FeaturesOfInterest", **{"$filter": f"geo.distance(feature, {HERE}) lt 1000"})
    assert sorted(f["properties"]["station"] for f in fois["value"]) == ["lab-1", "lab-2"]
    assert get(sta, "/sta/v1.1/Datastreams", **{"$filter": f"st_within(observedArea, {WORLD})",
                                                "$count": "true", "$top": "0"})["@iot.count"] == 6 + 6
    # Observations: the FeatureOfInterest condition picks Datastreams on the catalogue
    obs = get(sta, "/sta/v1.1/Observations", **{"$filter": f"geo.intersects(FeatureOfInterest/feature, {WORLD})",
                                                "$count": "true", "$top": "1"})
    assert obs["@iot.count"] == 6 * 180 + 6 * 30  # lab-1 and lab-2, none of lab-3's 4 x 10
    assert get(sta, "/sta/v1.1/Observations", **{
        "$filter": f"geo.distance(FeatureOfInterest/feature, {HERE}) lt 1000 and "
                   "Datastream/Thing/properties/station eq 'lab-3'"})["value"] == []
    for order in ("location", f"geo.distance(location, {HERE}) desc", "location/geometry,name"):
        ordered = get(sta, "/sta/v1.1/Locations", **{"$orderby": order})["value"]
        assert sorted(loc["name"] for loc in ordered) == ["Lab 1", "Lab 1", "Taipei 2", "lab-3"]
    nearest = get(sta, "/sta/v1.1/Locations", **{"$orderby": f"geo.distance(location, {HERE}) asc"})["value"]
    assert nearest[0]["name"] == "lab-3"  # no distance (null) sorts first, as null does everywhere here
    assert get(sta, "/sta/v1.1/FeaturesOfInterest", **{"$orderby": "feature desc"})["value"]


def test_spatial_functions_of_a_null_geometry_are_null():
    point = sta_filter.parse_wkt("POINT(1 2)")
    for value in (unlocated("x"), {"type": "Feature", "geometry": None, "properties": None}, None,
                  {"type": "GeometryCollection", "geometries": []}):
        for name in ("geo.distance", "geo.intersects", "st_intersects", "st_within", "st_contains",
                     "st_equals", "st_disjoint"):
            assert sta_filter.FUNCTIONS[name][1](value, point) is None, (name, value)
            assert sta_filter.FUNCTIONS[name][1](point, value) is None, (name, value)
    located = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}
    assert sta_filter.FUNCTIONS["geo.intersects"][1](located, point) is True
    assert sta_filter.FUNCTIONS["geo.distance"][1](located, sta_filter.parse_wkt("POINT(4 6)")) == 5.0


def test_readings_only_deployment_answers_every_collection_and_walk(influxdb, influx):
    """No meta at all (a harness that publishes readings only): Locations, HistoricalLocations and
    FeaturesOfInterest are not empty, and Annex A's four-level walk from every set passes."""
    write(influx, [pm_line(station, T0 + 60 * i, pm25=float(i), pm25_atm=1.0, pm1_atm=1.0, pm10_atm=2.0)
                   for station in ("bare-1", "bare-2") for i in range(5)])
    with make_client(influxdb) as client:
        for entity_set in SETS:
            assert get(client, f"/sta/v1.1/{entity_set}")["value"], entity_set
        assert [h["time"] for h in get(client, "/sta/v1.1/HistoricalLocations")["value"]] == \
            ["2026-01-01T00:00:00Z"] * 2
        hl = get(client, "/sta/v1.1/Things(1)/Locations(1)/HistoricalLocations(1)/Thing")
        assert hl["properties"]["station"] == "bare-1"
        oid = get(client, "/sta/v1.1/Things(1)/Datastreams(1)/Observations")["value"][0]["@iot.id"]
        foi = get(client, f"/sta/v1.1/Things(1)/Datastreams(1)/Observations({oid})/FeatureOfInterest")
        assert foi["feature"]["geometry"] is None
        assert get(client, "/sta/v1.1/Locations", **{"$filter": f"geo.intersects(location, {WORLD})"})["value"] \
            == []
        assert get(client, "/sta/v1.1/Observations", **{
            "$filter": f"geo.distance(FeatureOfInterest/feature, {HERE}) lt 1000"})["value"] == []
        assert sum(_walk(client, [name], []) for name in SETS) == 156


def test_a_position_published_later_takes_the_unlocated_locations_id(influxdb, influx):
    write(influx, [pm_line("late-1", T0 + 60 * i, pm25=1.0, pm25_atm=1.0) for i in range(3)])
    influx.write(meta_to_line("late-1", {"name": "Late", "sensors": {"a": "pms5003"}}, T0 - 600))  # no position
    with make_client(influxdb) as client:
        (before,) = get(client, "/sta/v1.1/Things(1)/Locations")["value"]
        assert before["@iot.id"] == 1 and before["location"]["geometry"] is None and before["name"] == "Late"
        (hl,) = get(client, "/sta/v1.1/Things(1)/HistoricalLocations")["value"]
        assert hl["time"] == "2026-01-01T00:00:00Z"  # its first reading, not the meta without a position
    influx.write(meta_to_line("late-1", {"name": "Late", "lat": 25.03, "lon": 121.56, "sensors": {"a": "pms5003"}},
                              T0 + 3600))
    with make_client(influxdb) as client:
        (after,) = get(client, "/sta/v1.1/Things(1)/Locations")["value"]
        assert after["@iot.id"] == 1 and after["location"] == {"type": "Point", "coordinates": [121.56, 25.03]}
        (hl,) = get(client, "/sta/v1.1/Things(1)/HistoricalLocations")["value"]
        assert hl["@iot.id"] == 1 and hl["time"] == "2026-01-01T01:00:00Z"  # the meta's time
        foi = get(client, "/sta/v1.1/FeaturesOfInterest(1)")
        assert foi["feature"] == after["location"]
