"""/v1/aqi: US AQI of the 24-hour mean and the WHO 2021 comparison, on known data."""

from __future__ import annotations

import pytest

from civicair.schema.storage import meta_to_line
from tests.api.conftest import DAY, HOUR, T0, pm_line, write

END = "2026-01-11"  # the 24 hours before it are 10 January
PERIOD = {"from": "2026-01-01", "to": END}


def seed(influx):
    """lab-1: ten full days (one reading every 10 min: 144 per day, window 600 s).
    Days 1–3 at 20 µg/m³ (above 15), days 4–10 at 5; on 10 January, 24 hours at
    10 or 14 alternately (hourly means 10, 14, …: 24-h mean 12). One flagged 500
    on 10 January must not count. lab-2: only 12 hours on 10 January, at 30."""
    lines = []
    for day in range(10):
        for i in range(144):
            t = T0 + day * DAY + 600 * i
            value = 20.0 if day < 3 else 5.0
            if day == 9:
                value = 10.0 if (i // 6) % 2 == 0 else 14.0
            lines.append(pm_line("lab-1", t, window=600, pm25=value))
    lines.append(pm_line("lab-1", T0 + 9 * DAY + 301, window=600, pm25=500.0, qc=4))
    lines += [pm_line("lab-2", T0 + 9 * DAY + HOUR * h, pm25=30.0) for h in range(12)]
    write(influx, lines)
    influx.write(meta_to_line("lab-1", {"name": "Lab 1", "lat": 52.09071, "lon": 5.12142}, T0))


def test_aqi_of_the_24_hour_mean_and_who_comparison_by_hand(client, influx):
    seed(influx)
    r = client.get("/v1/aqi", params=PERIOD)
    assert r.status_code == 200, r.text
    rows = {row["station"]: row for row in r.json()["results"]}
    lab = rows["lab-1"]
    assert lab["pm25_24h"] == pytest.approx(12.0) and lab["hours_24h"] == 24 and lab["aqi_valid"]
    assert (lab["aqi"], lab["aqi_category"], lab["aqi_colour"]) == (56, "Moderate", "#FFFF00")
    # Daily means: 20, 20, 20, 5 × 6, 12; all days complete (144 of 144 windows).
    assert lab["who_days"] == 10 and lab["who_valid_days"] == 10 and lab["who_days_above_24h"] == 3
    assert lab["who_mean"] == pytest.approx((3 * 20 + 6 * 5 + 12) / 10)  # 10.2
    assert lab["who_mean_above_annual"] is True
    assert (lab["name"], lab["lat"], lab["lon"]) == ("Lab 1", 52.091, 5.121)

    two = rows["lab-2"]
    assert two["hours_24h"] == 12 and not two["aqi_valid"]  # EPA wants 18 of 24 hours
    assert two["aqi"] == 90  # 49/26.3 × 20.9 + 51 = 89.94
    assert two["who_valid_days"] == 0 and two["who_mean"] is None and two["who_mean_above_annual"] is None
    meta = r.json()["meta"]["query"]
    assert (meta["aqi_from"], meta["aqi_to"]) == ("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z")


def test_who_days_of_a_duty_cycled_station_count_the_windows_it_is_meant_to_produce(client, influx):
    # 60 s windows, one every 15 minutes (duty_period 900): 96 a day, all present. Counted
    # against 86400 / 60 = 1440, every day would be 7 % complete and none valid.
    influx.write(meta_to_line("duty-1", {"window": 60, "duty_period": 900}, T0 - DAY))
    write(influx, [pm_line("duty-1", T0 + day * DAY + 900 * i + 60, pm25=8.0) for day in range(10)
                   for i in range(96)])
    (row,) = client.get("/v1/aqi", params={**PERIOD, "stations": "duty-1"}).json()["results"]
    assert (row["who_days"], row["who_valid_days"], row["who_mean"]) == (10, 10, 8.0)


def test_aqi_for_chosen_stations_as_csv(client, influx):
    seed(influx)
    r = client.get("/v1/aqi", params={**PERIOD, "stations": "lab-1", "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    header, row = r.text.splitlines()
    assert header.startswith("station,name,lat,lon,aqi,aqi_category,aqi_colour,pm25_24h (µg/m³)")
    assert row.startswith("lab-1,Lab 1,52.091,5.121,56,Moderate,#FFFF00,12.0")


def test_aqi_without_data_in_the_last_day(client, influx):
    seed(influx)
    params = {"from": "2026-01-01", "to": "2026-01-05", "stations": "lab-2"}
    row = client.get("/v1/aqi", params=params).json()["results"][0]
    assert row["aqi"] is None and row["hours_24h"] == 0 and row["who_days"] == 0
