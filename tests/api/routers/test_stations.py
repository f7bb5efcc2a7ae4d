"""/v1/stations and /v1/stations/{station}: metadata, published positions, status, coverage."""

from __future__ import annotations

import time

import pytest

from civicair.schema.storage import meta_to_line
from tests.api.conftest import DAY, HOUR, T0, make_client, pm_line, write


def now_minute() -> int:
    return int(time.time()) // 60 * 60


def seed(influx, now):
    write(influx, [pm_line("lab-1", T0, pm25=1), pm_line("lab-1", now - 120, pm25=2),  # online
                   pm_line("lab-1", now - 120, channel="b", sensor="sds011", pm25=2),
                   pm_line("old-1", now - 2 * HOUR, pm25=3),  # silent for 2 h: offline
                   pm_line("bye-1", now - 60, pm25=4)])
    influx.write(meta_to_line("lab-1", {"name": "Lab 1", "lat": 52.09071, "lon": 5.12142,
                                        "sensors": {"a": "pms5003", "b": "sds011"},
                                        "software": "civicair 0.1.0",
                                        "firmware": "pms 1.2"}, T0))
    influx.write(meta_to_line("old-1", {"name": "Exact", "lat": 48.856613, "lon": 2.352222,
                                        "exact_location": True, "licence": "ODbL-1.0"}, T0))
    influx.write(meta_to_line("meta-1", {"name": "Not yet measuring"}, T0))
    # bye-1's bridge disconnected after its last reading: its last will, as ingest/meta.py writes it
    influx.write(f'station,station=bye-1 status="offline" {now - 30}\n'.encode())


def test_every_station_with_metadata_status_and_first_and_last_reading(client, influx):
    now = now_minute()
    seed(influx, now)
    body = client.get("/v1/stations").json()
    by_id = {s["id"]: s for s in body["results"]}
    assert list(by_id) == ["bye-1", "lab-1", "meta-1", "old-1"]
    lab = by_id["lab-1"]
    assert lab == {
        "id": "lab-1", "name": "Lab 1", "lat": 52.091, "lon": 5.121, "location_exact": False,
        "sensors": [{"channel": "a", "model": "pms5003"}, {"channel": "b", "model": "sds011"}],
        "firmware": "pms 1.2", "software": "civicair 0.1.0", "licence": "CC-BY-4.0",
        "first_seen": "2026-01-01T00:00:00Z",
        "last_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 120)),
        "status": "online", "window_s": 60,
    }
    assert by_id["old-1"]["status"] == "offline"
    assert (by_id["old-1"]["lat"], by_id["old-1"]["lon"], by_id["old-1"]["location_exact"]) == (
        48.856613, 2.352222, True)
    assert by_id["old-1"]["licence"] == "ODbL-1.0"
    assert by_id["bye-1"]["status"] == "offline"
    assert by_id["meta-1"]["status"] == "unknown" and by_id["meta-1"]["last_seen"] is None
    assert body["meta"]["licence"] == "CC-BY-4.0" and body["meta"]["attribution"]


def test_stations_by_bbox_and_near_on_published_positions(client, influx):
    seed(influx, now_minute())
    ids = [s["id"] for s in client.get("/v1/stations", params={"bbox": "5,52,5.2,52.2"}).json()["results"]]
    assert ids == ["lab-1"]
    # The exact position 52.09071 is outside this box; the published 52.091 is inside: no more is revealed.
    tiny = client.get("/v1/stations", params={"bbox": "5.1209,52.0908,5.1211,52.0911"}).json()
    ids = [s["id"] for s in tiny["results"]]
    assert ids == ["lab-1"]
    near = client.get("/v1/stations", params={"near": "52.0,5.0", "radius": "100000"}).json()["results"]
    assert [s["id"] for s in near] == ["lab-1"] and 13_000 < near[0]["distance_m"] < 14_000


def test_geojson_feature_collection_for_maps(client, influx):
    seed(influx, now_minute())
    for r in (client.get("/v1/stations", params={"format": "geojson"}),
              client.get("/v1/stations", headers={"Accept": "application/geo+json"})):
        assert r.headers["content-type"] == "application/geo+json"
        body = r.json()
        assert body["type"] == "FeatureCollection" and body["meta"]["licence"] == "CC-BY-4.0"
        lab = next(f for f in body["features"] if f["id"] == "lab-1")
        assert lab["geometry"] == {"type": "Point", "coordinates": [5.121, 52.091]}
        assert lab["properties"]["name"] == "Lab 1" and "lat" not in lab["properties"]
        assert next(f for f in body["features"] if f["id"] == "bye-1")["geometry"] is None


def test_station_coverage_per_day_by_hand(client, influx):
    # Day 1: 720 of 1440 one-minute windows on channel a (a reading every 2 min), 10 of them flagged.
    # Day 2: all 1440. Day 3: none.
    write(influx, [pm_line("lab-1", T0 + 120 * i, pm25=1, qc=1 if i < 10 else 0) for i in range(720)]
          + [pm_line("lab-1", T0 + DAY + 60 * i, pm25=1) for i in range(1440)])
    r = client.get("/v1/stations/lab-1", params={"from": "2026-01-01", "to": "2026-01-04"})
    assert r.status_code == 200, r.text
    coverage = r.json()["results"][0]["coverage"]
    assert coverage == {"window_s": 60, "percent": 50.0, "days": [
        {"date": "2026-01-01", "channel": "a", "windows": 720, "clean": 710, "expected": 1440,
         "percent": 50.0},
        {"date": "2026-01-02", "channel": "a", "windows": 1440, "clean": 1440, "expected": 1440,
         "percent": 100.0},
        {"date": "2026-01-03", "channel": "a", "windows": 0, "clean": 0, "expected": 1440, "percent": 0.0},
    ]}


def test_coverage_counts_partial_and_local_days(client, influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=1) for i in range(120)])  # 00:00–02:00Z
    r = client.get("/v1/stations/lab-1", params={"from": "2026-01-01T00:00:00Z",
                                                 "to": "2026-01-01T04:00:00Z"})
    assert r.json()["results"][0]["coverage"]["days"] == [
        {"date": "2026-01-01", "channel": "a", "windows": 120, "clean": 120, "expected": 240,
         "percent": 50.0}]
    # Asia/Tokyo is UTC+9: 00–02Z is 09–11 local, on 1 January.
    local = client.get("/v1/stations/lab-1", params={"from": "2026-01-01", "to": "2026-01-02",
                                                     "tz": "Asia/Tokyo"}).json()
    assert local["results"][0]["coverage"]["days"][0]["windows"] == 120


def test_a_duty_cycled_station_that_produced_every_window_it_was_meant_to_is_fully_covered(client, influx):
    # One 60 s window every 5 minutes (duty_period 300, as the bridge's meta says): 288 a day.
    influx.write(meta_to_line("duty-1", {"name": "Sleeper", "window": 60, "duty_period": 300}, T0 - DAY))
    write(influx, [pm_line("duty-1", T0 + 300 * i + 60, pm25=1) for i in range(2 * 288)])
    coverage = client.get("/v1/stations/duty-1", params={"from": "2026-01-01", "to": "2026-01-03"}).json()[
        "results"][0]["coverage"]
    assert (coverage["percent"], coverage["window_s"], coverage["duty_period_s"]) == (100.0, 60, 300)
    assert [(d["windows"], d["expected"]) for d in coverage["days"]] == [(288, 288), (288, 288)]


def test_station_detail_reports_laser_hours_against_the_rated_life(client, influx):
    # As the bridge re-publishes its meta: laser hours per channel, counted across restarts.
    influx.write(meta_to_line("lab-1", {"sensors": {"a": "sds011", "b": "pms5003"}, "duty_period": 300,
                                        "laser_hours": {"a": 2000.0, "b": 13140}}, T0))
    write(influx, [pm_line("lab-1", T0 + 60, sensor="sds011", pm25=1), pm_line("lab-1", T0 + 60, channel="b", pm25=1)])
    health = client.get("/v1/stations/lab-1", params={"from": "2026-01-01", "to": "2026-01-02"}).json()[
        "results"][0]["health"]
    assert health == {"duty_period_s": 300, "sensors": [
        # SDS011: 8000 h rated (Nova); PMS5003: MTTF 3 years = 26,280 h (Plantower).
        {"channel": "a", "model": "sds011", "laser_hours": 2000.0, "rated_life_hours": 8000.0,
         "life_used_percent": 25.0},
        {"channel": "b", "model": "pms5003", "laser_hours": 13140.0, "rated_life_hours": 26280.0,
         "life_used_percent": 50.0},
    ]}


def test_unknown_station_is_404_and_a_malformed_id_is_422(client):
    r = client.get("/v1/stations/nobody")
    assert r.status_code == 404 and r.json() == {"detail": "no station 'nobody'", "code": "not_found"}
    assert client.get("/v1/stations/Bad%20Id").status_code == 422


@pytest.mark.parametrize("minutes", [5, 9])
def test_online_window_is_configurable(influxdb, influx, minutes):
    now = now_minute()
    write(influx, [pm_line("lab-1", now - 6 * 60, pm25=1)])
    with make_client(influxdb, online_min_s=minutes * 60) as client:
        status = client.get("/v1/stations").json()["results"][0]["status"]
    assert status == ("online" if minutes > 6 else "offline")
