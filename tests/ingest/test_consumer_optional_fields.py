"""The contract's optional fields (``climate``, ``status``) through the running ingest,
both directions of the version rule: an old-style reading (neither field) is stored as
before, with no ``climate`` field; a reading naming its companion is stored with it; an
SPS30 reading whose status register has a fault bit gets ``SENSOR_FAULT``."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from civicair.influx import series
from civicair.schema import contract
from civicair.schema.qc import TEXT, Flag
from civicair.schema.sensors import STATUS_FAULT_BITS
from ingest.clean import Cleaner
from ingest.columns import decode
from ingest.kernels import sensor_fault
from ingest.lineprotocol import encode
from tests.conftest import wait_until
from tests.ingest.conftest import T0, reading, stored_count

FAN_SPEED_WARNING, LASER_FAILURE, FAN_FAILURE = 1 << 21, 1 << 5, 1 << 4


def _sps30(station: str, seq: int, **extra: object) -> dict:
    return {"v": 1, "station": station, "sensor": "sps30", "channel": "a", "ts": T0 + 60 * seq, "window": 60,
            "n": 60, "seq": seq, "boot": 1, "synced": True, "pm1_atm": 4.0, "pm25_atm": 6.5,
            "pm4_atm": 7.0, "pm10_atm": 7.2, **extra}


def _lines(readings: list[dict]) -> list[str]:
    batch, dead = decode([(contract.readings_topic(r["station"]), orjson.dumps(r)) for r in readings])
    assert not dead
    return encode(Cleaner().clean(batch, now=T0 + 86400)).decode().splitlines()


def test_an_old_style_reading_is_encoded_as_before_and_a_new_one_with_its_source():
    old, new = reading("lab-1", 1), {**reading("lab-1", 2), "climate": "sht3x"}
    (only_old,) = _lines([old])
    assert "climate" not in only_old
    mixed = _lines([old, new])
    assert mixed[0] == only_old  # a new reading beside it changes nothing in the old one's line
    assert ',climate="sht3x",' in mixed[1]


@pytest.mark.parametrize("status, flagged", [
    (0, False), (FAN_SPEED_WARNING, True), (LASER_FAILURE, True), (FAN_FAILURE, True),
    (1 << 3, False),  # a reserved bit is not a fault
    (LASER_FAILURE | FAN_FAILURE | FAN_SPEED_WARNING, True),
])
def test_sps30_status_bits_raise_sensor_fault(status, flagged):
    batch, _ = decode([(contract.readings_topic("lab-1"), orjson.dumps([_sps30("lab-1", 1, status=status),
                                                                        _sps30("lab-1", 2)]))])
    qc = Cleaner().clean(batch, now=T0 + 86400).derived["qc"]
    assert bool(qc[0] & Flag.SENSOR_FAULT) is flagged
    assert not qc[1] & Flag.SENSOR_FAULT  # no status: nothing known, no flag


def test_sensor_fault_kernel_and_its_public_text():
    bits = STATUS_FAULT_BITS["sps30"]
    assert bits == FAN_SPEED_WARNING | LASER_FAILURE | FAN_FAILURE
    got = sensor_fault(np.array([0, FAN_FAILURE, 1 << 3, FAN_SPEED_WARNING]), np.array([bits, bits, bits, 0]))
    assert got.tolist() == [False, True, False, False]  # a model without a status register: never
    assert Flag.SENSOR_FAULT == 1 << 9 and TEXT[Flag.SENSOR_FAULT].label == "sensor fault"


def test_optional_fields_are_stored_and_old_style_readings_as_before(influx, spawn_ingest, publisher):
    ingest = spawn_ingest()
    old = reading("mix-1", 1)
    new = {**reading("mix-1", 2), "sensor": "pms5003", "climate": "sht3x", "rh": 77.5, "temp": 12.25}
    publisher.publish(contract.readings_topic("mix-1"), orjson.dumps([old, new]))
    publisher.publish(contract.readings_topic("mix-2"), orjson.dumps(
        [_sps30("mix-2", 1, status=LASER_FAILURE), _sps30("mix-2", 2, status=0), _sps30("mix-2", 3)]))
    publisher.settle()
    wait_until(lambda: stored_count(influx) == 5, timeout=30, message="5 readings stored")

    (result,) = influx.query('SELECT "climate", "rh", "pm25_method", "qc" FROM "pm" GROUP BY "station"')
    rows = {(s["tags"]["station"], int(v[0])): v[1:] for s in series(result) for v in s["values"]}
    assert rows[("mix-1", T0 + 60)][:3] == [None, old["rh"], "epa_barkjohn_2021"]
    assert rows[("mix-1", T0 + 120)][:3] == ["sht3x", 77.5, "epa_barkjohn_2021"]
    assert rows[("mix-2", T0 + 60)][3] & Flag.SENSOR_FAULT
    assert not rows[("mix-2", T0 + 120)][3] & Flag.SENSOR_FAULT
    assert not rows[("mix-2", T0 + 180)][3] & Flag.SENSOR_FAULT
    # The counter moves after InfluxDB answered the write, a moment after the points show.
    wait_until(lambda: ingest.metric("civicair_ingest_written_readings_total") == 5, timeout=10,
               message="5 readings counted as written")
    dead = {k: v for k, v in ingest.metrics().items() if k.startswith("civicair_ingest_deadlettered_total")}
    assert not any(dead.values()), dead
