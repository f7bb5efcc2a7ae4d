"""A finite but absurd value (``pm25_atm: 1e308``, ``rh: -1e308``, ``temp: 1e308``) through
the running ingest: stored as sent, flagged OUT_OF_RANGE, no corrected pm25 from it, no numpy
warning, nothing dead-lettered, and (issue 12) left out of the API's default aggregates."""

from __future__ import annotations

import orjson

from civicair.influx import series
from civicair.schema import contract
from civicair.schema.qc import Flag
from tests.api.conftest import make_client
from tests.conftest import wait_until
from tests.ingest.conftest import reading, stored_count


def test_a_value_beyond_the_sensors_range_is_stored_flagged_without_pm25(influx, spawn_ingest, publisher):
    ingest = spawn_ingest()
    absurd = [
        {**reading("odd-1", 1), "pm25_atm": 1e308, "pm25_cf1": 1e308},  # PMS5003 with RH: the EPA route
        {**reading("odd-1", 2), "pm25_atm": -1e308, "pm25_cf1": None},
        {**reading("odd-2", 1), "sensor": "sds011", "pm25_atm": 1e308, "pm10_atm": 1e308, "pm25_cf1": None},
        reading("odd-1", 3),  # a sane neighbour in the same message is corrected as usual
    ]
    publisher.publish(contract.readings_topic("odd-1"), orjson.dumps(absurd[:2] + absurd[3:]))
    publisher.publish(contract.readings_topic("odd-2"), orjson.dumps(absurd[2]))
    publisher.settle()
    wait_until(lambda: stored_count(influx) == 4, timeout=30, message="4 readings stored")

    (result,) = influx.query('SELECT "pm25_atm", "pm25", "pm25_method", "qc" FROM "pm" GROUP BY "station"')
    rows = {(s["tags"]["station"], int(v[0])): v[1:] for s in series(result) for v in s["values"]}
    t0 = reading("odd-1", 0)["ts"]
    assert rows[("odd-1", t0 + 60)] == [1e308, None, "none", int(Flag.OUT_OF_RANGE)]
    assert rows[("odd-1", t0 + 120)] == [-1e308, None, "none", int(Flag.OUT_OF_RANGE)]
    assert rows[("odd-2", t0 + 60)][:3] == [1e308, None, "none"]
    assert rows[("odd-2", t0 + 60)][3] & Flag.OUT_OF_RANGE
    sane = rows[("odd-1", t0 + 180)]
    assert sane[1] is not None and sane[2] == "epa_barkjohn_2021" and sane[3] == 0
    dead = {k: v for k, v in ingest.metrics().items() if k.startswith("civicair_ingest_deadlettered_total")}
    assert not any(dead.values()), dead
    assert ingest.metric("civicair_ingest_written_readings_total") == 4
    log = ingest.log_text()
    assert "Warning" not in log and "overflow" not in log, log[-2000:]


def test_humidity_and_temperature_beyond_range_are_stored_flagged_and_left_out_of_the_hourly_mean(
        influxdb, influx, spawn_ingest, publisher):
    ingest = spawn_ingest()
    sent = [
        reading("clim-1", 1),  # rh 41
        {**reading("clim-1", 2), "rh": -1e308},
        reading("clim-1", 3),  # rh 43
        {**reading("clim-1", 4), "temp": 1e308},  # rh 44 is sane, but the reading is flagged
        {**reading("clim-1", 5), "rh": 250.0},
        {k: v for k, v in reading("clim-1", 6).items() if k != "temp"},  # rh 46, no temperature
        {k: v for k, v in reading("clim-1", 7).items() if k not in ("rh", "temp")},  # neither
    ]
    publisher.publish(contract.readings_topic("clim-1"), orjson.dumps(sent))
    publisher.settle()
    wait_until(lambda: stored_count(influx) == 7, timeout=30, message="7 readings stored")

    (result,) = influx.query('SELECT "rh", "temp", "pm25_method", "qc" FROM "pm"')
    rows = {int(v[0]): v[1:] for s in series(result) for v in s["values"]}
    t0 = reading("clim-1", 0)["ts"]
    out, uncorrected = int(Flag.OUT_OF_RANGE), int(Flag.UNCORRECTED)
    assert [rows[t0 + 60 * i] for i in range(1, 8)] == [
        [41.0, 21.5, "epa_barkjohn_2021", 0],
        [-1e308, 21.5, "uncorrected_atm", out | uncorrected],  # stored as sent; not humid, not used
        [43.0, 21.5, "epa_barkjohn_2021", 0],
        [44.0, 1e308, "epa_barkjohn_2021", out],
        [250.0, 21.5, "uncorrected_atm", out | uncorrected],
        [46.0, None, "epa_barkjohn_2021", 0],
        [None, None, "uncorrected_atm", uncorrected],
    ]
    dead = {k: v for k, v in ingest.metrics().items() if k.startswith("civicair_ingest_deadlettered_total")}
    assert not any(dead.values()), dead
    log = ingest.log_text()
    assert "Warning" not in log and "overflow" not in log, log[-2000:]

    params = {"from": "2025-01-01", "to": "2025-01-02", "interval": "1h", "params": "rh,temp",
              "aggregates": "mean,count"}
    with make_client(influxdb) as client:
        r = client.get("/v1/stations/clim-1/measurements", params=params)
        assert r.status_code == 200, r.text
        (hour,) = r.json()["results"]
        assert hour["rh_mean"] == round((41 + 43 + 46) / 3, 2) and hour["rh_count"] == 3
        assert hour["temp_mean"] == 21.5 and hour["temp_count"] == 2
        # The flagged readings are there: only asking for them overflows InfluxDB's mean (a
        # 400 database_refused, tests/api/routers/test_measurements.py), so count them.
        r = client.get("/v1/stations/clim-1/measurements",
                       params={**params, "aggregates": "count", "include_flagged": "true"})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["rh_count"] == 6 and r.json()["results"][0]["temp_count"] == 5
