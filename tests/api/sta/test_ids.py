"""Derived ids: stable, within int64, reversible, and collision-free per catalogue."""

from __future__ import annotations

from api.sta import ids


def test_ids_round_trip_and_fit_in_int64():
    thing = ids.station_hash("lab-1")
    assert thing == ids.station_hash("lab-1") and 0 < thing < 2**27
    ds = ids.datastream_id(2**27 - 1, "b", 5)
    assert ids.split_datastream(ds) == (2**27 - 1, "b", 5)
    oid = ids.observation_id(ds, 4102444799)
    assert oid <= ids.MAX_ID and ids.split_observation(oid) == (ds, 4102444799)


def test_colliding_stations_get_distinct_ids_and_the_earlier_keeps_its_own():
    stations = [f"s-{i}" for i in range(20_000)]
    assigned = ids.assign_things(stations)
    assert len(set(assigned.values())) == len(stations)
    moved = [s for s in stations if assigned[s] != ids.station_hash(s)]
    assert moved  # 20,000 stations in 27 bits collide a few times
    for station in moved:  # the earlier station of each pair kept the plain hash
        first = min(s for s in stations if ids.station_hash(s) == ids.station_hash(station))
        assert first < station and assigned[first] == ids.station_hash(first)


def test_humidity_datastreams_follow_the_data_not_only_the_model():
    """A plain PMS5003 with a climate companion (rh and temp in its readings) gets
    Relative humidity and Temperature Datastreams; one without gets none."""
    from api.settings import ApiSettings
    from api.sta import model

    def result(rows):
        return {"series": [{"name": "pm", "tags": tags, "columns": cols, "values": [values]}
                           for tags, cols, values in rows]}

    seen = [({"station": s, "sensor": "pms5003", "channel": "a"}, ["time", "window"], [100, 60])
            for s in ("with-bme", "plain")]
    first = [({"station": s, "channel": "a"}, ["time", "n"], [40, 20]) for s in ("with-bme", "plain")]
    climate = [({"station": "with-bme", "channel": "a"}, ["time", "value"], [100, 55.0])]
    stations = model.parse([result([]), result([]), result(seen), result(first), result(climate),
                            result(climate)])
    cat = model.build(stations, ApiSettings())
    names = {s: sorted(d.props["name"] for d in cat.datastreams_of(s)) for s in ("with-bme", "plain")}
    assert names["plain"] == ["PM1", "PM10", "PM2.5", "PM2.5 (raw)"]
    assert names["with-bme"] == sorted(names["plain"] + ["Relative humidity", "Temperature"])
    sensor = cat.get("Sensor", model.sensor_id("pms5003"))
    assert sensor is not None and sensor.props["properties"]["family"] == "plantower"
