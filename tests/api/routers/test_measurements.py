"""/v1/stations/{station}/measurements and /v1/measurements on known data in a real InfluxDB.

Aggregates are checked against values computed by hand from the seeded readings.
"""

from __future__ import annotations

import pytest

from civicair.schema.storage import meta_to_line
from tests.api.conftest import DAY, HOUR, T0, make_client, pm_line, write

URL = "/v1/stations/lab-1/measurements"
DAY0 = {"from": "2026-01-01", "to": "2026-01-02"}


def seed_hours(influx):
    """Hour 0: 2 4 6 8 10 clean (10 only UNCORRECTED, bit 256), 100 a spike (bit 4).
    Hour 1: 1 3 clean, 50 without a qc field (written before quality flags existed).
    Hour 3: 7 flagged out of range (bit 1). Hour 2: nothing."""
    write(influx, [
        *(pm_line("lab-1", T0 + 60 * i, pm25=v) for i, v in enumerate([2, 4, 6, 8])),
        pm_line("lab-1", T0 + 240, pm25=100, qc=4),
        pm_line("lab-1", T0 + 300, pm25=10, qc=256),
        pm_line("lab-1", T0 + HOUR, pm25=1), pm_line("lab-1", T0 + HOUR + 60, pm25=3),
        pm_line("lab-1", T0 + HOUR + 120, pm25=50, qc=None),
        pm_line("lab-1", T0 + 3 * HOUR, pm25=7, qc=1),
    ])


def test_hourly_aggregates_by_hand_leave_out_flagged_readings(client, influx):
    seed_hours(influx)
    r = client.get(URL, params={**DAY0, "interval": "1h", "aggregates": "mean,min,max,count,median"})
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [
        {"time": "2026-01-01T00:00:00Z", "pm25_mean": 6, "pm25_min": 2, "pm25_max": 10, "pm25_count": 5,
         "pm25_median": 6},
        {"time": "2026-01-01T01:00:00Z", "pm25_mean": 2, "pm25_min": 1, "pm25_max": 3, "pm25_count": 2,
         "pm25_median": 2},
    ]
    meta = r.json()["meta"]
    assert meta["units"] == {"pm25_mean": "µg/m³", "pm25_min": "µg/m³", "pm25_max": "µg/m³",
                             "pm25_count": "readings", "pm25_median": "µg/m³"}
    assert meta["query"]["include_flagged"] is False and meta["licence"] == "CC-BY-4.0"


def test_include_flagged_puts_every_reading_into_the_aggregates(client, influx):
    seed_hours(influx)
    r = client.get(URL, params={**DAY0, "interval": "1h", "aggregates": "mean,count,median,max",
                                "include_flagged": "true"})
    rows = r.json()["results"]
    assert [row["time"][11:13] for row in rows] == ["00", "01", "03"]  # hour 2 has no data: no row
    assert rows[0]["pm25_mean"] == round(130 / 6, 2) == 21.67 and rows[0]["pm25_count"] == 6
    assert rows[0]["pm25_median"] == 7 and rows[0]["pm25_max"] == 100
    assert rows[1] == {"time": "2026-01-01T01:00:00Z", "pm25_mean": 18, "pm25_count": 3, "pm25_median": 3,
                       "pm25_max": 50}
    assert rows[2]["pm25_mean"] == 7


def test_daily_means_follow_local_days_with_tz(client, influx):
    write(influx, [pm_line("lab-1", T0 + 22 * HOUR + 1800, pm25=20),   # 23:30 in Amsterdam, 1 January
                   pm_line("lab-1", T0 + 23 * HOUR + 1800, pm25=10)])  # 00:30 in Amsterdam, 2 January
    utc = client.get(URL, params={"from": "2026-01-01", "to": "2026-01-03", "interval": "1d"}).json()
    assert utc["results"] == [{"time": "2026-01-01T00:00:00Z", "pm25_mean": 15}]
    local = client.get(URL, params={"from": "2026-01-01", "to": "2026-01-03", "interval": "1d",
                                    "tz": "Europe/Amsterdam"}).json()
    assert local["results"] == [{"time": "2026-01-01T00:00:00+01:00", "pm25_mean": 20},
                                {"time": "2026-01-02T00:00:00+01:00", "pm25_mean": 10}]
    assert local["meta"]["query"]["from"] == "2026-01-01T00:00:00+01:00"  # a date is local midnight


def test_raw_readings_carry_every_field_and_their_qc(client, influx):
    seed_hours(influx)
    r = client.get(URL, params={**DAY0, "limit": 2})
    assert r.json()["results"] == [
        {"time": "2026-01-01T00:00:00Z", "station": "lab-1", "sensor": "pms5003", "channel": "a", "boot": 1,
         "n": 20, "pm25": 2, "qc": 0, "seq": T0 % 100000, "synced": True, "window": 60},
        {"time": "2026-01-01T00:01:00Z", "station": "lab-1", "sensor": "pms5003", "channel": "a", "boot": 1,
         "n": 20, "pm25": 4, "qc": 0, "seq": (T0 + 60) % 100000, "synced": True, "window": 60},
    ]


def test_params_select_and_rename_fields(client, influx):
    write(influx, [pm_line("lab-1", T0, pm25=9.5, pm25_atm=12, pm10_atm=20, rh=55)])
    row = client.get(URL, params={**DAY0, "params": "pm25_raw,pm10,rh"}).json()["results"][0]
    assert row == {"time": "2026-01-01T00:00:00Z", "station": "lab-1", "sensor": "pms5003", "channel": "a",
                   "pm25_raw": 12, "pm10": 20, "rh": 55, "qc": 0}
    agg = client.get(URL, params={**DAY0, "params": "pm25_raw,rh", "interval": "1d",
                                  "aggregates": "max"}).json()
    assert agg["results"] == [{"time": "2026-01-01T00:00:00Z", "pm25_raw_max": 12, "rh_max": 55}]
    assert agg["meta"]["units"] == {"pm25_raw_max": "µg/m³", "rh_max": "%"}


def test_times_are_output_in_the_requested_zone(client, influx):
    write(influx, [pm_line("lab-1", T0, pm25=1)])
    r = client.get(URL, params={**DAY0, "tz": "America/New_York"})
    assert r.json()["results"] == []  # 2026-01-01 in New York starts at 05:00Z
    r = client.get(URL, params={"from": "2025-12-31", "to": "2026-01-01", "tz": "America/New_York"})
    assert r.json()["results"][0]["time"] == "2025-12-31T19:00:00-05:00"


# -- cursor paging --------------------------------------------------------------------------------


def seed_two_channels(influx, timestamps=5):
    write(influx, [pm_line("lab-1", T0 + 60 * i, channel=ch, pm25=i)
                   for i in range(timestamps) for ch in "ab"])


def all_pages(client, params):
    rows, pages, url, query = [], 0, URL, params
    while url:
        body = client.get(url, params=query).json()
        rows += body["results"]
        pages += 1
        url, query = body["meta"]["paging"]["next"], None
        assert pages < 50
    return rows, pages


@pytest.mark.parametrize(("limit", "pages"), [(1, 5), (3, 5), (4, 3), (5, 3), (10, 1), (11, 1)])
def test_cursor_pages_end_on_whole_timestamps_and_lose_nothing(client, influx, limit, pages):
    seed_two_channels(influx)
    rows, count = all_pages(client, {**DAY0, "limit": limit})
    assert [(r["time"], r["channel"]) for r in rows] == sorted(
        (f"2026-01-01T00:0{i}:00Z", ch) for i in range(5) for ch in "ab")
    assert count == pages


def test_next_cursor_is_the_time_the_next_page_starts(client, influx):
    seed_two_channels(influx)
    paging = client.get(URL, params={**DAY0, "limit": 3}).json()["meta"]["paging"]
    assert paging == {"limit": 3, "next_cursor": "2026-01-01T00:01:00Z",
                      "next": "/v1/stations/lab-1/measurements?from=2026-01-01&to=2026-01-02&limit=3"
                              "&cursor=2026-01-01T00%3A01%3A00Z"}
    last = client.get(URL, params={**DAY0, "cursor": "2026-01-01T00:04:00Z"}).json()
    assert len(last["results"]) == 2 and last["meta"]["paging"]["next_cursor"] is None


def test_default_page_is_1000_rows(client, influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=1) for i in range(1200)])
    body = client.get(URL, params=DAY0).json()
    assert len(body["results"]) == 1000 and body["meta"]["paging"]["next_cursor"] == "2026-01-01T16:40:00Z"


# -- many stations --------------------------------------------------------------------------------


def seed_two_stations(influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=10 + i) for i in range(3)]
          + [pm_line("lab-2", T0 + 60 * i, pm25=40) for i in range(2)]
          + [pm_line("far-1", T0, pm25=99)])
    influx.write(meta_to_line("lab-1", {"name": "Utrecht", "lat": 52.0907, "lon": 5.1214}, T0))
    influx.write(meta_to_line("lab-2", {"name": "De Bilt", "lat": 52.1093, "lon": 5.1810}, T0))
    influx.write(meta_to_line("far-1", {"name": "Paris", "lat": 48.8566, "lon": 2.3522}, T0))


def test_many_stations_aggregate_station_by_station(client, influx):
    seed_two_stations(influx)
    r = client.get("/v1/measurements", params={**DAY0, "stations": "lab-2,lab-1", "interval": "1h",
                                               "aggregates": "mean,count"})
    assert r.json()["results"] == [
        {"time": "2026-01-01T00:00:00Z", "station": "lab-1", "pm25_mean": 11, "pm25_count": 3},
        {"time": "2026-01-01T00:00:00Z", "station": "lab-2", "pm25_mean": 40, "pm25_count": 2},
    ]


def test_many_stations_raw_in_time_order(client, influx):
    seed_two_stations(influx)
    rows = client.get("/v1/measurements", params={**DAY0, "stations": "lab-1,lab-2", "params": "pm25"}).json()
    assert [(r["time"][14:16], r["station"], r["pm25"]) for r in rows["results"]] == [
        ("00", "lab-1", 10), ("00", "lab-2", 40), ("01", "lab-1", 11), ("01", "lab-2", 40),
        ("02", "lab-1", 12)]


@pytest.mark.parametrize(("area", "expected"), [
    ({"bbox": "5.0,52.0,5.2,52.2"}, {"lab-1", "lab-2"}),
    ({"bbox": "5.0,52.0,5.15,52.2"}, {"lab-1"}),
    ({"near": "48.85,2.35", "radius": "5000"}, {"far-1"}),
    ({"bbox": "5.0,52.0,5.2,52.2", "stations": "lab-2,far-1"}, {"lab-2"}),
    ({"bbox": "-10,-10,-9,-9"}, set()),
])
def test_stations_by_area(client, influx, area, expected):
    seed_two_stations(influx)
    r = client.get("/v1/measurements", params={**DAY0, **area, "interval": "1d"})
    assert r.status_code == 200, r.text
    assert {row["station"] for row in r.json()["results"]} == expected


def test_many_stations_need_a_selection(client):
    r = client.get("/v1/measurements", params=DAY0)
    assert r.status_code == 422 and r.json()["code"] == "missing_stations"


# -- limits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "code"), [
    ({"from": "2024-01-01", "to": "2026-01-01"}, "range_too_long"),
    ({"from": "2026-01-02", "to": "2026-01-01"}, "invalid_range"),
    ({"from": "2026-02-30"}, "invalid_time"),
    ({"from": "1999-12-31"}, "invalid_time"),
    ({**DAY0, "aggregates": "mean"}, "invalid_combination"),
    ({**DAY0, "interval": "1h", "cursor": "2026-01-01T01:00:00Z"}, "invalid_combination"),
    ({**DAY0, "params": "pm25_method"}, "invalid_parameter"),
    ({**DAY0, "interval": "15m"}, "invalid_parameter"),
    ({**DAY0, "limit": "10001"}, "invalid_parameter"),
])
def test_out_of_bounds_requests_are_clear_422s(client, params, code):
    r = client.get(URL, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["detail"]


def test_aggregate_budget_and_station_limit_come_from_settings(influxdb, influx):
    with make_client(influxdb, max_buckets=48, max_stations=2) as client:
        assert client.get(URL, params={**DAY0, "interval": "1h"}).status_code == 200  # 25 buckets
        r = client.get("/v1/measurements", params={**DAY0, "stations": "a,b", "interval": "1h"})
        assert r.status_code == 422 and r.json()["code"] == "too_many_rows"
        r = client.get("/v1/measurements", params={**DAY0, "stations": "a,b,c", "interval": "1d"})
        assert r.status_code == 422 and r.json()["code"] == "too_many_stations"


def test_year_of_hourly_means_is_allowed_by_default(client, influx):
    write(influx, [pm_line("lab-1", T0 + DAY * d, pm25=d % 10) for d in range(0, 365, 5)])
    r = client.get(URL, params={"from": "2026-01-01", "to": "2027-01-01", "interval": "1h"})
    assert r.status_code == 200 and len(r.json()["results"]) == 73


def test_a_mean_beyond_the_float_range_is_a_clear_error_not_a_crash(client, influx):
    """Values near 1e308 are stored as sent (flagged out of range, issue 12); a mean over two
    of them overflows, and InfluxDB cannot encode +Inf: a JSON error, not a 500."""
    write(influx, [pm_line("lab-1", T0 + 60, pm10_atm=1.7e308, qc=1), pm_line("lab-1", T0 + 120, pm10_atm=1.6e308, qc=1),
                   pm_line("lab-1", T0 + 180, pm10_atm=9.0)])
    params = {**DAY0, "interval": "1h", "params": "pm10"}
    r = client.get(URL, params=params)
    assert r.status_code == 200 and r.json()["results"][0]["pm10_mean"] == 9.0, r.text
    r = client.get(URL, params={**params, "include_flagged": "true"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "database_refused" and "float range" in r.json()["detail"]
