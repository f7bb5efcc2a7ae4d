"""Formats and HTTP conventions: CSV (whole, paged, streamed), gzip, ETag/304, Cache-Control."""

from __future__ import annotations

import csv
import gzip
import io

from tests.api.conftest import T0, make_client, pm_line, write

URL = "/v1/stations/lab-1/measurements"
DAY0 = {"from": "2026-01-01", "to": "2026-01-02"}


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_by_parameter_or_accept_header_with_units_in_the_header(client, influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=i, rh=50) for i in range(3)])
    for r in (client.get(URL, params={**DAY0, "format": "csv", "params": "pm25,rh"}),
              client.get(URL, params={**DAY0, "params": "pm25,rh"}, headers={"Accept": "text/csv"})):
        assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.text.splitlines()[0] == "time,station,sensor,channel,pm25 (µg/m³),rh (%),qc"
        assert r.text.splitlines()[1] == "2026-01-01T00:00:00Z,lab-1,pms5003,a,0,50,0"
        assert r.headers["link"] == '<https://creativecommons.org/licenses/by/4.0/>; rel="license"'
        assert r.headers["x-data-licence"] == "CC-BY-4.0" and "attachment" in r.headers["content-disposition"]


def test_accept_prefers_json_when_the_client_does(client, influx):
    r = client.get(URL, params=DAY0, headers={"Accept": "application/json, text/csv;q=0.5"})
    assert r.headers["content-type"] == "application/json"
    r = client.get(URL, params=DAY0, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.headers["content-type"] == "application/json"


def test_aggregates_as_csv(client, influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=v) for i, v in enumerate([1, 2, 6])])
    r = client.get(URL, params={**DAY0, "interval": "1h", "aggregates": "mean,count", "format": "csv"})
    assert r.text == "time,pm25_mean (µg/m³),pm25_count (readings)\r\n2026-01-01T00:00:00Z,3,3\r\n"


def test_empty_csv_still_has_its_header(client):
    r = client.get(URL, params={**DAY0, "format": "csv"})
    assert r.status_code == 200 and r.text.startswith("time,station,sensor,channel")


def test_csv_of_a_long_range_streams_every_page_with_one_header(influxdb, influx):
    # Two channels at 23 timestamps, some with fields the first page lacks.
    write(influx, [pm_line("lab-1", T0 + 60 * i, channel=ch, pm25=i, **({"temp": 20.5} if i > 20 else {}))
                   for i in range(23) for ch in "ab"])
    with make_client(influxdb, max_rows=5) as client:
        r = client.get(URL, params={**DAY0, "format": "csv"})
        assert r.status_code == 200 and "etag" not in r.headers  # streamed: no ETag before the body is known
        rows = rows_of(r.text)
        assert len(rows) == 46 and r.text.count("time,") == 1
        assert [(row["time"], row["channel"]) for row in rows] == sorted(
            (f"2026-01-01T00:{i:02d}:00Z", ch) for i in range(23) for ch in "ab")
        assert rows[0]["temp (°C)"] == "" and rows[-1]["temp (°C)"] == "20.5"

        with make_client(influxdb, max_rows=5, max_csv_rows=40) as small:
            r = small.get(URL, params={**DAY0, "format": "csv"})
            assert r.status_code == 422 and r.json()["code"] == "too_many_rows"


def test_csv_with_limit_is_one_page_with_a_link_to_the_next(client, influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=i) for i in range(5)])
    r = client.get(URL, params={**DAY0, "format": "csv", "limit": 2})
    assert len(rows_of(r.text)) == 2
    assert r.headers["link"].endswith('<' + URL + '?from=2026-01-01&to=2026-01-02&format=csv&limit=2'
                                      '&cursor=2026-01-01T00%3A02%3A00Z>; rel="next"')


def test_large_responses_are_gzipped(client, influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=i) for i in range(200)])
    r = client.get(URL, params=DAY0, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and len(r.json()["results"]) == 200
    raw = client.get(URL, params=DAY0, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    small = client.get("/v1/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under 1 KiB: not worth it
    assert gzip  # the client decodes transparently


def test_etag_and_if_none_match_give_304(client, influx):
    write(influx, [pm_line("lab-1", T0, pm25=1)])
    first = client.get(URL, params=DAY0)
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "public, max-age=60"
    again = client.get(URL, params=DAY0, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(URL, params=DAY0, headers={"If-None-Match": etag.removeprefix("W/")}).status_code == 304
    write(influx, [pm_line("lab-1", T0 + 60, pm25=2)])
    changed = client.get(URL, params=DAY0, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_every_response_has_cache_control(client):
    assert client.get("/v1/stations").headers["cache-control"] == "public, max-age=60"
    assert client.get("/v1/stations/x%27").headers["cache-control"] == "public, max-age=60"
    assert client.get("/v1/health").headers["cache-control"] == "no-store"
    assert client.get("/openapi.json").headers["etag"]


def test_cache_max_age_is_configurable(influxdb):
    with make_client(influxdb, cache_max_age_s=300) as client:
        assert client.get("/v1/stations").headers["cache-control"] == "public, max-age=300"


def test_openapi_documents_every_endpoint_with_examples(client):
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) == {"/v1/stations", "/v1/stations/{station}",
                                 "/v1/stations/{station}/measurements", "/v1/measurements", "/v1/latest",
                                 "/v1/aqi", "/v1/health", "/v1/archive", "/v1/archive/{path}", "/sta/v1.1",
                                 "/sta/v1.1/{path}"}
    for path, item in doc["paths"].items():
        assert set(item) == {"get"}, path  # read-only
        assert item["get"]["responses"]["200"]["content"]["application/json"].get("example"), path
    params = {p["name"]: p for p in doc["paths"]["/v1/measurements"]["get"]["parameters"]}
    assert params["from"]["schema"]["examples"] == ["2026-01-01", "2026-01-01T06:00:00+01:00"]
    assert client.get("/docs").status_code == 200
