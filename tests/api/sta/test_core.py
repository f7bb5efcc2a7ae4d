"""Annex A.1 "Sensing Core" of OGC 18-088, as pytest: service root, collections, entities,
mandatory properties and navigation links, 404s, property / $value / $ref paths and
navigation four levels deep."""

from __future__ import annotations

import pytest

from api.sta import ids
from api.sta.model import NAVIGATION, PROPERTIES, SETS
from civicair.schema.storage import meta_to_line
from tests.api.conftest import T0, make_client, pm_line, write
from tests.api.sta.conftest import BASE, N1

MANDATORY = {
    "Thing": ("name", "description"),
    "Location": ("name", "description", "encodingType", "location"),
    "HistoricalLocation": ("time",),
    "Datastream": ("name", "description", "unitOfMeasurement", "observationType"),
    "Sensor": ("name", "description", "encodingType", "metadata"),
    "ObservedProperty": ("name", "definition", "description"),
    "Observation": ("phenomenonTime", "resultTime", "result"),
    "FeatureOfInterest": ("name", "description", "encodingType", "feature"),
}


def test_service_root_lists_exactly_the_eight_sets_and_the_conformance_classes(sta):
    body = sta.get("/sta/v1.1").json()
    assert {v["name"]: v["url"] for v in body["value"]} == {name: f"{BASE}/{name}" for name in SETS}
    conformance = body["serverSettings"]["conformance"]
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data" in conformance
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel" in conformance
    assert body["licence"]["name"] == "CC-BY-4.0" and body["attribution"]
    assert sta.get("/sta/v1.1/").json() == body


@pytest.mark.parametrize("entity_set", list(SETS))
def test_every_collection_has_entities_with_mandatory_properties_and_links(sta, entity_set):
    r = sta.get(f"/sta/v1.1/{entity_set}")
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert value
    type_ = SETS[entity_set]
    for entity in value:
        assert isinstance(entity["@iot.id"], int) and 0 < entity["@iot.id"] <= ids.MAX_ID
        assert entity["@iot.selfLink"] == f"{BASE}/{entity_set}({entity['@iot.id']})"
        for name in MANDATORY[type_]:
            assert entity[name] is not None, (type_, name)
        for nav in NAVIGATION[type_]:
            assert entity[f"{nav}@iot.navigationLink"] == f"{entity['@iot.selfLink']}/{nav}"
        assert set(entity) - {"@iot.id", "@iot.selfLink"} - {f"{n}@iot.navigationLink" for n in NAVIGATION[type_]} \
            <= set(PROPERTIES[type_])
    one = value[0]
    again = sta.get(one["@iot.selfLink"].removeprefix("http://testserver"))
    assert again.status_code == 200 and again.json() == one


@pytest.mark.parametrize("entity_set", list(SETS))
def test_a_missing_entity_is_404_in_every_set(sta, entity_set):
    r = sta.get(f"/sta/v1.1/{entity_set}(9223372036854775807)")
    assert r.status_code == 404 and r.json()["detail"]
    assert r.json()["message"] == r.json()["detail"]  # where SensorThings clients (FROST's) read it
    assert sta.get(f"/sta/v1.1/{entity_set}(99999999999999999999)").status_code == 404


def test_malformed_ids_and_unknown_sets_are_400_and_404(sta):
    assert sta.get("/sta/v1.1/Things('lab-1')").status_code == 400
    assert sta.get("/sta/v1.1/Thingz").status_code == 404
    assert sta.get("/sta/v1.1/Things/name").status_code == 400


def thing_of(sta, station):
    things = sta.get("/sta/v1.1/Things").json()["value"]
    return next(t for t in things if t["properties"]["station"] == station)


def test_thing_properties_carry_station_hardware_and_licence(sta):
    thing = thing_of(sta, "lab-1")
    assert thing["name"] == "Lab 1"
    props = thing["properties"]
    assert props["hardware"] == {"a": "pms5003t"} and props["licence"] == "CC-BY-4.0"
    assert props["attribution"] and props["licenceUrl"].startswith("https://")
    assert thing["@iot.id"] == 1  # the first station in sorted order on a fresh database


def test_property_value_and_ref_paths(sta):
    tid = thing_of(sta, "lab-1")["@iot.id"]
    assert sta.get(f"/sta/v1.1/Things({tid})/name").json() == {"name": "Lab 1"}
    r = sta.get(f"/sta/v1.1/Things({tid})/name/$value")
    assert r.status_code == 200 and r.text == "Lab 1" and r.headers["content-type"].startswith("text/plain")
    assert sta.get(f"/sta/v1.1/Things({tid})/nonsense").status_code == 404
    refs = sta.get(f"/sta/v1.1/Things({tid})/Datastreams/$ref").json()["value"]
    assert len(refs) == 6 and all(set(r) == {"@iot.selfLink"} for r in refs)
    assert sta.get(f"/sta/v1.1/Things({tid})/$ref").json() == {"@iot.selfLink": f"{BASE}/Things({tid})"}
    assert sta.get("/sta/v1.1/Things/$ref").json()["value"][0]["@iot.selfLink"].startswith(f"{BASE}/Things(")


def test_navigation_four_levels_deep(sta):
    tid = thing_of(sta, "lab-1")["@iot.id"]
    ds = sta.get(f"/sta/v1.1/Things({tid})/Datastreams?$filter=name eq 'PM2.5'").json()["value"]
    assert len(ds) == 1
    dsid = ds[0]["@iot.id"]
    obs = sta.get(f"/sta/v1.1/Things({tid})/Datastreams({dsid})/Observations").json()
    assert len(obs["value"]) == 100 and "@iot.nextLink" in obs
    oid = obs["value"][0]["@iot.id"]
    assert obs["value"][0]["result"] == 0.0 and obs["value"][0]["resultTime"] == "2026-01-01T00:00:00Z"
    deep = sta.get(f"/sta/v1.1/Things({tid})/Datastreams({dsid})/Observations({oid})/FeatureOfInterest")
    assert deep.status_code == 200 and deep.json()["feature"]["coordinates"] == [5.2, 52.1]
    four = sta.get(f"/sta/v1.1/Datastreams({dsid})/Observations({oid})/Datastream/Thing/Locations")
    assert four.status_code == 200 and four.json()["value"][0]["location"]["coordinates"] == [5.2, 52.1]
    assert sta.get(f"/sta/v1.1/Datastreams({dsid})/Sensor").json()["name"] == "PMS5003T"
    assert sta.get(f"/sta/v1.1/Datastreams({dsid})/ObservedProperty").json()["name"] == "PM2.5"
    # An Observation of another Datastream is not one of this Datastream's.
    other = sta.get(f"/sta/v1.1/Things({tid})/Datastreams?$filter=name eq 'PM10'").json()["value"][0]["@iot.id"]
    assert sta.get(f"/sta/v1.1/Datastreams({other})/Observations({oid})").status_code == 404


def test_observation_by_derived_id_is_stable_and_complete(sta):
    ds = [d for d in sta.get("/sta/v1.1/Datastreams?$filter=name eq 'PM2.5'").json()["value"]
          if d["properties"]["station"] == "lab-1"][0]
    t = T0 + 60 * 10
    oid = ids.observation_id(ds["@iot.id"], t)
    obs = sta.get(f"/sta/v1.1/Observations({oid})").json()
    assert obs["result"] == 10.0 and obs["resultQuality"] == ["SPIKE"]
    assert obs["phenomenonTime"] == "2026-01-01T00:09:00Z/2026-01-01T00:10:00Z"
    assert obs["parameters"] == {"frames": 20, "window_s": 60, "qc": 4, "correction": "epa_barkjohn_2021"}
    assert sta.get(f"/sta/v1.1/Observations({oid + 1})").status_code == 404  # no reading one second later


def test_historical_locations_record_each_published_move(sta):
    tid = thing_of(sta, "lab-1")["@iot.id"]
    hls = sta.get(f"/sta/v1.1/Things({tid})/HistoricalLocations?$orderby=time").json()["value"]
    assert [h["time"] for h in hls] == ["2025-12-31T23:00:00Z", "2025-12-31T23:30:00Z"]
    first = sta.get(f"/sta/v1.1/HistoricalLocations({hls[0]['@iot.id']})/Locations").json()["value"]
    assert first[0]["location"]["coordinates"] == [5.121, 52.091]  # rounded as published
    assert len(sta.get(f"/sta/v1.1/Things({tid})/Locations").json()["value"]) == 1


def test_datastreams_per_sensor_model_and_channel(sta):
    names = sorted(d["name"] for d in sta.get("/sta/v1.1/Datastreams?$top=1000").json()["value"]
                   if d["properties"]["station"] == "lab-2")
    assert names == ["PM10", "PM10", "PM2.5", "PM2.5", "PM2.5 (raw)", "PM2.5 (raw)"]  # two sds011 channels
    temp = sta.get("/sta/v1.1/Datastreams?$filter=name eq 'Temperature'").json()["value"]
    assert len(temp) == 1 and temp[0]["unitOfMeasurement"]["symbol"] == "Cel"
    assert N1 == 180


def test_pyciot_requests_find_a_station_by_its_civil_iot_taiwan_property(sta):
    """pyCIOT (Civil IoT Taiwan's Python client) finds a station by ``properties/stationID`` and
    reads the latest value of each Datastream with this one request (its url.py, as it writes it)."""
    url = ("/sta/v1.1/Things?$expand=Datastreams,Locations,Datastreams/Observations($orderby=phenomenonTime%20desc;"
           "$top=1)&$filter=properties/stationID%20eq%20%27lab-1%27&$top=1000&$count=true")
    body = sta.get(url).json()
    assert body["@iot.count"] == 1
    (thing,) = body["value"]
    assert thing["properties"]["stationID"] == thing["properties"]["station"] == "lab-1"
    assert thing["Locations"][0]["location"]["coordinates"] == [5.2, 52.1]
    latest = {d["name"]: [o["result"] for o in d["Observations"]] for d in thing["Datastreams"]}
    assert latest["PM2.5"] == [float(N1 - 1)] and len(latest) == 6


def _walk(client, names: list[str], keys: list[int | None], level: int = 4) -> int:
    """Annex A's resource-path test (the OGC suite's checkResourcePaths): from each set, the first
    entity's every navigation property, four levels deep; each collection non-empty, each $ref
    only selfLinks. Returns the number of paths read."""
    path = "/".join(n if k is None else f"{n}({k})" for n, k in zip(names, keys, strict=False)) + \
        ("/" + names[-1] if len(names) > len(keys) else "")
    r = client.get(f"/sta/v1.1/{path}")
    assert r.status_code == 200, (path, r.text[:200])
    body = r.json()
    head = names[-1]
    plural = head in SETS
    if plural:
        assert body["value"], f"an empty collection at {path}"
        first = body["value"][0]["@iot.id"]
    else:
        first = body["@iot.id"]
    refs = client.get(f"/sta/v1.1/{path}/$ref").json()
    for ref in refs["value"] if plural else [refs]:
        assert set(ref) == {"@iot.selfLink"}, path
    if len(names) == level:
        return 1
    type_ = SETS[head] if plural else head
    read = 1
    for nav in NAVIGATION[type_]:
        read += _walk(client, [*names, nav], [*keys, first if plural else None], level)
    return read


def test_resource_paths_four_levels_deep_from_every_set_are_never_empty(influxdb, influx):
    """One station whose sensor model is not the contract's first: Sensors lists the models
    Datastreams use, so Sensors' first entity has Datastreams as the walk expects."""
    write(influx, [pm_line("only-1", T0 + 60 * i, sensor="pms5003t", pm25=float(i), pm25_atm=1.0, pm1_atm=1.0,
                           pm10_atm=2.0, rh=50.0, temp=20.0) for i in range(5)])
    influx.write(meta_to_line("only-1", {"name": "Only", "lat": 25.03, "lon": 121.56,
                                         "sensors": {"a": "pms5003t"}}, T0 - 60))
    with make_client(influxdb) as client:
        assert [s["name"] for s in client.get("/sta/v1.1/Sensors").json()["value"]] == ["PMS5003T"]
        assert sum(_walk(client, [name], []) for name in SETS) == 156
