"""/v1/latest: the latest clean reading of every station with its US AQI."""

from __future__ import annotations

import csv
import io
import time

from civicair.schema.aqi import us_aqi
from civicair.schema.storage import meta_to_line
from tests.api.conftest import DAY, pm_line, write


def iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def seed(influx):
    now = int(time.time()) // 60 * 60
    write(influx, [
        pm_line("lab-1", now - 180, pm25=12.0, pm25_atm=15.0, pm10_atm=20.0, rh=60.0),
        pm_line("lab-1", now - 120, pm25=40.0, pm25_atm=45.0, qc=4),  # a spike: flagged
        pm_line("lab-2", now - 60, pm25=8.1, qc=256),  # uncorrected only: clean
        pm_line("gone-1", now - 8 * DAY, pm25=3.0),  # older than the 7-day look-back
    ])
    influx.write(meta_to_line("lab-1", {"name": "Lab 1", "lat": 52.09071, "lon": 5.12142}, now - DAY))
    return now


def test_latest_clean_reading_with_aqi_category_and_colour(client, influx):
    now = seed(influx)
    body = client.get("/v1/latest").json()
    rows = {r["station"]: r for r in body["results"]}
    assert set(rows) == {"lab-1", "lab-2"}
    assert rows["lab-1"] == {
        "station": "lab-1", "name": "Lab 1", "lat": 52.091, "lon": 5.121, "time": iso(now - 180),
        "last_seen": iso(now - 120), "status": "online", "pm25": 12.0, "qc": 0, "sensor": "pms5003",
        "channel": "a", "nowcast": None, "aqi": 56, "aqi_basis": "reading",  # 49/26.3 × 2.9 + 51
        "aqi_category": "Moderate", "aqi_colour": "#FFFF00",
    }
    assert (rows["lab-2"]["aqi"], rows["lab-2"]["aqi_category"]) == (45, "Good")  # 50/9 × 8.1 = 45
    assert body["meta"]["units"] == {"pm25": "µg/m³", "nowcast": "µg/m³"}


def test_params_add_fields_of_that_same_reading(client, influx):
    seed(influx)
    body = client.get("/v1/latest", params={"params": "pm25_raw,pm10,rh,temp", "stations": "lab-1"}).json()
    (row,) = body["results"]
    assert [row[p] for p in ("pm25", "pm25_raw", "pm10", "rh", "temp")] == [12.0, 15.0, 20.0, 60.0, None]
    assert body["meta"]["units"] == {"pm25": "µg/m³", "pm25_raw": "µg/m³", "pm10": "µg/m³", "rh": "%",
                                     "temp": "°C", "nowcast": "µg/m³"}


def test_include_flagged_shows_the_very_latest_reading(client, influx):
    now = seed(influx)
    row = next(r for r in client.get("/v1/latest", params={"include_flagged": "true"}).json()["results"]
               if r["station"] == "lab-1")
    assert (row["time"], row["pm25"], row["qc"], row["aqi"]) == (iso(now - 120), 40.0, 4, 112)


def test_latest_as_geojson_and_csv(client, influx):
    seed(influx)
    geo = client.get("/v1/latest", params={"format": "geojson", "stations": "lab-1"}).json()
    (feature,) = geo["features"]
    assert feature["geometry"]["coordinates"] == [5.121, 52.091] and feature["properties"]["aqi"] == 56
    text = client.get("/v1/latest", params={"params": "rh"}, headers={"Accept": "text/csv"}).text
    assert text.splitlines()[0] == ("station,name,lat,lon,time,last_seen,status,pm25 (µg/m³),rh (%),qc,"
                                    "sensor,channel,nowcast (µg/m³),aqi,aqi_basis,aqi_category,aqi_colour")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["station"] for r in rows] == ["lab-1", "lab-2"]
    assert rows[0]["pm25 (µg/m³)"] == "12" and rows[1]["lat"] == "" and rows[0]["aqi_colour"] == "#FFFF00"
    assert rows[0]["rh (%)"] == "60" and rows[1]["rh (%)"] == ""


def test_latest_by_area(client, influx):
    seed(influx)
    rows = client.get("/v1/latest", params={"near": "52.09,5.12", "radius": "1000"}).json()["results"]
    assert [r["station"] for r in rows] == ["lab-1"]


#: US EPA's worked NowCast example ("PM NowCast" fact sheet): the 12 hourly means, most
#: recent first, and the NowCast it gives. w = 10/90 < 0.5, so w* = 0.5 and the NowCast
#: is Σ 0.5^(i-1)·c_i / Σ 0.5^(i-1) = 17.4 µg/m³ (truncated).
EPA_HOURS = (13, 16, 10, 21, 74, 64, 53, 82, 90, 75, 80, 50)


def test_current_aqi_is_the_nowcast_of_the_last_twelve_hours(client, influx):
    for _ in range(3):  # an hour boundary between seeding and asking shifts every hour: ask again
        hour = int(time.time()) // 3600 * 3600
        write(influx, [pm_line("epa-1", hour - i * 3600 + 1800, pm25=float(c))
                       for i, c in enumerate(EPA_HOURS, start=1)]
              + [pm_line("epa-1", hour - i * 3600 + 1200, pm25=500.0, qc=4) for i in (1, 2)])  # flagged: left out
        row = next(r for r in client.get("/v1/latest").json()["results"] if r["station"] == "epa-1")
        if int(time.time()) // 3600 * 3600 == hour:
            break
    assert (row["nowcast"], row["aqi_basis"]) == (17.4, "nowcast")
    # 17.4 µg/m³ is Moderate: 51 + 49/26.3 × (17.4 − 9.1) = 66.46 → 66
    assert row["aqi"] == us_aqi(17.4).value == 66
    assert row["pm25"] == 13.0  # the latest clean reading, kept beside the NowCast


def test_a_station_with_one_of_the_last_three_hours_has_no_nowcast_yet(client, influx):
    hour = int(time.time()) // 3600 * 3600
    write(influx, [pm_line("new-1", hour - 3 * 3600 + 1800, pm25=30.0)])  # c_3 only: EPA needs 2 of 3
    row = next(r for r in client.get("/v1/latest").json()["results"] if r["station"] == "new-1")
    assert (row["nowcast"], row["aqi_basis"], row["aqi"]) == (None, "reading", us_aqi(30.0).value)
