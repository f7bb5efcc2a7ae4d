"""/v1/health, and what every endpoint answers when InfluxDB is down."""

from __future__ import annotations

from tests.api.conftest import make_client


def test_health_reports_the_database(client):
    r = client.get("/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["influxdb"] == "up"
    assert r.headers["cache-control"] == "no-store"


def test_database_down_is_503_not_500(influxdb):
    with make_client(influxdb, influx_timeout_s=2) as client:
        influxdb.stop()
        r = client.get("/v1/health")
        assert r.status_code == 503 and r.json()["influxdb"] == "down"
        for url in ("/v1/stations", "/v1/latest", "/v1/stations/lab-1/measurements", "/v1/aqi"):
            r = client.get(url)
            assert r.status_code == 503, (url, r.text)
            assert r.headers["retry-after"] == "10" and r.headers["cache-control"] == "no-store"
            assert r.json()["code"] == "unavailable"
