"""The consumer never crashes on input: hypothesis-generated payloads (bytes, arbitrary JSON,
readings with fields mutated) go through the real broker to a running ingest process, which
must acknowledge every one (stored or dead-lettered) and still store a valid reading after."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from civicair.schema import contract
from tests.conftest import wait_until
from tests.ingest.conftest import reading, stored

FIELDS = [*contract.HEADER_FIELDS, *contract.MEASURED_FIELDS, "min", "max", "extra"]

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@st.composite
def mutated_reading(draw) -> dict:
    r = reading("fuzz-1", draw(st.integers(0, 10_000)))
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        if draw(st.booleans()):
            r.pop(key, None)
        else:
            r[key] = draw(json_values)
    return r


@st.composite
def extreme_reading(draw) -> dict:
    """Valid by the contract, with values at the edges: exercises cleaning, encoding and
    InfluxDB's own limits (a ts past year 2262 is refused by InfluxDB: a dead letter too)."""
    r = reading("fuzz-2", 0)
    r.update(sensor=draw(st.sampled_from(contract.SENSORS)), channel=draw(st.sampled_from(contract.CHANNELS)),
             ts=draw(st.integers(contract.EARLIEST_TS, 2**63 - 1)), n=draw(st.integers(0, 2**63 - 1)),
             synced=draw(st.booleans()))
    number = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53) | st.none()
    for key in draw(st.lists(st.sampled_from(list(contract.MEASURED_FIELDS)), max_size=8)):
        r[key] = draw(number)
    return r


def _dump(value) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # e.g. an integer beyond 64 bits: send its text instead
        return str(value).encode()


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(_dump),
    mutated_reading().map(orjson.dumps),
    st.lists(mutated_reading(), min_size=1, max_size=5).map(orjson.dumps),
    st.lists(extreme_reading(), min_size=1, max_size=5).map(orjson.dumps),
)
# Stations that break the id rule too, but never a wildcard, a slash, a control character
# or a non-character: Mosquitto disconnects a publisher for such a topic (malformed packet),
# which is the broker's job, not the ingest's.
stations = st.sampled_from(["fuzz-1", "fuzz-2"]) | st.text(
    st.characters(blacklist_characters="+#/", blacklist_categories=("Cc", "Cs", "Cn", "Co")),
    min_size=1, max_size=12)
kinds = st.sampled_from(["readings", "readings", "readings", "meta", "status"])


def test_arbitrary_payloads_are_acknowledged_and_never_stop_the_consumer(influx, spawn_ingest, publisher):
    ingest = spawn_ingest()

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(station=stations, kind=kinds, payload=payloads)
    def publish_one(station: str, kind: str, payload: bytes) -> None:
        publisher.publish(f"civicair/v1/{station}/{kind}", payload)

    publish_one()
    sentinel = reading("fuzz-sentinel", 0)
    publisher.publish(contract.readings_topic("fuzz-sentinel"), orjson.dumps(sentinel))
    publisher.settle()

    wait_until(lambda: stored(influx, ["fuzz-sentinel"]), timeout=60, message="the reading after the fuzz")
    wait_until(lambda: ingest.metric("civicair_ingest_acked_messages_total") >= publisher.sent, timeout=60,
               message="every fuzzed message acknowledged")
    m = ingest.metrics()
    assert ingest.alive()
    assert m["civicair_ingest_received_messages_total"] == publisher.sent
    assert m["civicair_ingest_acked_messages_total"] == publisher.sent
    assert m["civicair_ingest_buffered_messages"] == 0
    assert m["civicair_ingest_prepare_failures_total"] == 0, ingest.log_tail()
    assert ingest.health()[0] == 200
