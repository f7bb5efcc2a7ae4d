"""GET /v1/archive and its files: links, sizes, hashes, ETag / Content-Length / Cache-Control."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from api.app import create_app
from archive.command import build
from tests.api.conftest import pm_line, write
from tests.archive.conftest import DAY, T0, TODAY, settings_for


def test_archive_lists_days_and_serves_files_with_etag_length_and_immutable_caching(influxdb, influx,
                                                                                     archive_dir):
    settings = settings_for(influxdb, archive_dir)
    with TestClient(create_app(settings)) as client:
        empty = client.get("/v1/archive")
        assert empty.status_code == 200 and empty.json()["results"] == []

    write(influx, [pm_line("api-1", T0 + d * DAY + 60 * i, pm25=5.0 + i, pm25_atm=6.0, pm25_method="none")
                   for d in range(2) for i in range(400)])
    build(settings, today=TODAY)
    with TestClient(create_app(settings)) as client:
        listing = client.get("/v1/archive").json()
        days = listing["results"]
        assert [d["day"] for d in days] == ["2025-01-02", "2025-01-01"]  # newest first
        assert days[0]["rows"] == 400 and days[0]["final"] is True and days[0]["complete"] is True
        assert {f["format"] for f in days[0]["files"]} == {"parquet", "csv.gz"}
        assert listing["meta"]["licence"] == "CC-BY-4.0"
        assert client.get(listing["meta"]["datapackage"]).json()["name"] == "civicair-readings"

        for f in days[0]["files"]:
            r = client.get(f["url"], headers={"Accept-Encoding": "gzip"})
            assert r.status_code == 200
            assert hashlib.sha256(r.content).hexdigest() == f["sha256"]
            assert r.headers["etag"] == f'"{f["sha256"]}"'
            assert int(r.headers["content-length"]) == f["bytes"] == len(r.content)
            assert "content-encoding" not in r.headers  # sent as stored, never compressed again
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert r.headers["content-type"] in ("application/vnd.apache.parquet", "application/gzip")
            again = client.get(f["url"], headers={"If-None-Match": r.headers["etag"]})
            assert again.status_code == 304 and again.content == b""

        stations = client.get(listing["meta"]["stations"])
        assert stations.status_code == 200 and "api-1" in stations.text
        assert "immutable" not in stations.headers["cache-control"]

        for bad in ("/v1/archive/../../etc/passwd", "/v1/archive/readings/year=2025/month=01/2025-01-09.parquet",
                    "/v1/archive/readings/..%2F..%2Fdatapackage.json", "/v1/archive/.datapackage.json.tmp-1"):
            r = client.get(bad)
            assert r.status_code == 404, bad

    # A day that late readings may still change is not immutable.
    recent = settings_for(influxdb, archive_dir, archive_final_after_days=100_000)
    with TestClient(create_app(recent)) as client:
        day = client.get("/v1/archive").json()["results"][0]
        assert day["final"] is False
        r = client.get(day["files"][0]["url"])
        assert "immutable" not in r.headers["cache-control"] and r.headers["etag"] == f'"{day["files"][0]["sha256"]}"'
