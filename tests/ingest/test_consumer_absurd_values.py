"""A finite but absurd value (``pm25_atm: 1e308``) through the running ingest: stored as
sent, flagged OUT_OF_RANGE, no corrected pm25, no numpy warning, nothing dead-lettered."""

from __future__ import annotations

import orjson

from civicair.influx import series
from civicair.schema import contract
from civicair.schema.qc import Flag
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
