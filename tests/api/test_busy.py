"""A burst of requests queues for InfluxDB query slots; past the queue timeout, a clear 503.

One client may not fill InfluxDB (which the ingest and every reader share) with parallel
heavy queries: each API process runs at most CIVICAIR_INFLUX_MAX_CONCURRENT at once.
"""

from __future__ import annotations

from tests.api.conftest import make_client


def test_a_request_that_finds_every_slot_taken_waits_then_gets_503_busy(influxdb, influx):
    with make_client(influxdb, influx_max_concurrent=1, influx_queue_timeout_s=0.3,
                     response_cache_s=0) as client:
        assert client.get("/v1/stations").status_code == 200
        slots = client.app.state.influx._slots
        client.portal.call(slots.acquire)  # another request's query, still running
        try:
            r = client.get("/v1/stations")
            assert r.status_code == 503
            assert r.json()["code"] == "busy" and "busy" in r.json()["detail"]
            assert r.headers["retry-after"] == "5" and r.headers["cache-control"] == "no-store"
        finally:
            client.portal.call(slots.release)
        assert client.get("/v1/stations").status_code == 200  # the slot is back


def test_slots_are_given_back_when_a_query_fails(influxdb, influx):
    with make_client(influxdb, influx_max_concurrent=1, influx_queue_timeout_s=0.3,
                     response_cache_s=0) as client:
        influxdb.stop()
        for _ in range(3):  # each 503 "unavailable" returns its slot; none turns into "busy"
            r = client.get("/v1/stations")
            assert r.status_code == 503 and r.json()["code"] == "unavailable", r.text
