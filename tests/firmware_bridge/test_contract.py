"""Wire contract v1: what ingest accepts, and the reason it gives when it refuses."""

from __future__ import annotations

import pytest

from firmware_bridge import contract
from firmware_bridge.errors import ContractError

GOOD = {"v": 1, "station": "lab-1", "sensor": "pms5003", "channel": "a", "ts": 1_800_000_000,
        "window": 60, "n": 58, "seq": 3, "boot": 1, "synced": True, "pm25_atm": 11.0, "rh": None}


def test_good_reading_passes():
    assert contract.validate_reading(dict(GOOD), "lab-1")["pm25_atm"] == 11.0


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"station": "other"}, "differs from topic"),
        ({"station": "Bad Id"}, "must match"),
        ({"v": 2}, "unsupported contract version"),
        ({"sensor": "dylos"}, "unknown sensor"),
        ({"channel": "c"}, "channel"),
        ({"ts": 1000}, "before 2020"),
        ({"ts": "1800000000"}, "must be an integer"),
        ({"n": True}, "must be an integer"),
        ({"synced": 1}, "must be bool"),
        ({"pm25_atm": "12"}, "finite number"),
        ({"pm25_atm": float("inf")}, "finite number"),
        ({"pm99": 1.0}, "unknown field"),
        ({"window": 0}, "window must be > 0"),
    ],
)
def test_contract_breaks_are_refused_with_a_reason(change, reason):
    with pytest.raises(ContractError, match=reason):
        contract.validate_reading({**GOOD, **change}, "lab-1")


def test_missing_field_is_named():
    bad = dict(GOOD)
    del bad["seq"]
    with pytest.raises(ContractError, match="missing field 'seq'"):
        contract.validate_reading(bad)


@pytest.mark.parametrize("topic", ["civicair/v1/lab-1/readings/x", "other/v1/lab-1/readings",
                                   "civicair/v1/LAB/readings", "civicair/v1//readings"])
def test_bad_topics_are_refused(topic):
    with pytest.raises(ContractError):
        contract.station_from_topic(topic)


def test_topics():
    assert contract.readings_topic("lab-1") == "civicair/v1/lab-1/readings"
    assert contract.station_from_topic("civicair/v1/lab-1/status") == "lab-1"
    with pytest.raises(ContractError):
        contract.readings_topic("+")
