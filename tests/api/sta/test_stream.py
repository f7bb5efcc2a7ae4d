"""Streamed Observations pages (api/sta/engine.py ``stream_observations``): the same bytes as the
buffered document, on InfluxDB filled by the real ingest from readings published to the real
broker; no ETag; errors before the first byte are proper answers, a failure after it cuts the
body short; frost-sta-client reads a streamed page served by uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import frost_sta_client as frost
import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from api.sta import engine, observations
from civicair.influx import AsyncInflux, InfluxUnavailable
from civicair.schema import contract
from civicair.services import free_port, new_session_dying_with_parent
from tests import procs
from tests.api.conftest import make_client
from tests.conftest import DATABASE, wait_until
from tests.ingest.conftest import IngestProcess, Publisher

READINGS = 700  # a page of all of them is some 390 KB of JSON: more than engine.STREAM_MIN_BYTES
WINDOW = 60


@pytest.fixture
def ingested(tmp_path, mosquitto, influxdb, influx) -> Iterator[int]:
    """The real ingest, fed 700 one-minute readings of one station (every 7th flagged by a
    spike-sized jump is up to the ingest), ending an hour ago; yields the first reading's time."""
    env = {"CIVICAIR_MQTT_HOST": mosquitto.host, "CIVICAIR_MQTT_PORT": str(mosquitto.port),
           "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE,
           "CIVICAIR_DEADLETTER_PATH": str(tmp_path / "dead.jsonl"), "CIVICAIR_METRICS_HOST": "127.0.0.1",
           "CIVICAIR_METRICS_PORT": str(free_port()), "CIVICAIR_BATCH_AGE_S": "0.2",
           "CIVICAIR_MQTT_CLIENT_ID": "ingest-stream"}
    ingest = IngestProcess(env, tmp_path / "ingest.log").start()
    end = (int(time.time()) - 3600) // WINDOW * WINDOW
    t0 = end - WINDOW * (READINGS - 1)
    pub = Publisher(mosquitto.host, mosquitto.port, client_id="stream-publisher")
    pub.publish(contract.meta_topic("st-1"), orjson.dumps(
        {"name": "ST 1", "lat": 48.2, "lon": 16.37, "sensors": {"a": "pms5003"}}), retain=True)
    batch = [{"v": 1, "station": "st-1", "sensor": "pms5003", "channel": "a", "ts": t0 + WINDOW * i,
              "window": WINDOW, "n": 26, "seq": i, "boot": 1, "synced": True, "pm1_atm": 2.0,
              "pm25_atm": 5.0 + i % 40 + (300.0 if i % 97 == 0 else 0.0), "pm10_atm": 19.0,
              "pm1_cf1": 2.0, "pm25_cf1": 5.0, "pm10_cf1": 19.0} for i in range(READINGS)]
    for k in range(0, READINGS, 100):
        pub.publish(contract.readings_topic("st-1"), orjson.dumps(batch[k:k + 100]))
    pub.settle()

    def stored():
        (r,) = influx.query('SELECT count("seq") FROM "pm"')
        rows = r.get("series") or []
        return rows and rows[0]["values"][0][1] == READINGS
    try:
        wait_until(stored, timeout=60, message=f"readings stored; ingest log:\n{ingest.log_tail()}")
        wait_until(lambda: influx.query('SELECT count("name") FROM "station"')[0].get("series"), timeout=30,
                   message="station meta stored")
        yield t0
    finally:
        ingest.stop()
        pub.close()


def _path(url: str) -> str:
    return urlsplit(url)._replace(scheme="", netloc="").geturl()


def _walk(client, url: str, params: dict | None) -> list:
    """Every page of a collection by its nextLinks: (status, ETag, body bytes) of each."""
    pages = []
    while url:
        r = client.get(url, params=params)
        assert r.status_code == 200, r.text
        pages.append((r.headers.get("etag"), r.content))
        url, params = orjson.loads(r.content).get("@iot.nextLink"), None
        url = url and _path(url)
    return pages


def test_streamed_pages_are_the_buffered_pages_bytes(ingested, influxdb, monkeypatch):
    t0 = ingested
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + WINDOW * 50))
    with make_client(influxdb) as client:
        (ds,) = [d["@iot.id"] for d in orjson.loads(client.get(
            "/sta/v1.1/Datastreams", params={"$filter": "name eq 'PM2.5'"}).content)["value"]]
        url = f"/sta/v1.1/Datastreams({ds})/Observations"
        cases = [
            {"$top": "250"},
            {"$top": "1000"},
            {"$top": "160", "$count": "true", "$orderby": "phenomenonTime desc"},
            {"$top": "200", "$select": "result,phenomenonTime,id"},
            {"$top": "120", "$skip": "30", "$filter": f"phenomenonTime ge {start} and result gt 20"},
            {"$top": "300", "$filter": "result lt 0"},  # nothing
            {"$top": "150", "$filter": f"phenomenonTime lt {start} or result gt 40"},  # row by row: buffered
        ]
        monkeypatch.setattr(engine, "STREAM_MIN_BYTES", 1)  # every block sent as it comes
        monkeypatch.setattr(observations, "CHUNK_ROWS", 37)  # many blocks, series split over chunks
        streamed = [_walk(client, url, params) for params in cases]
        monkeypatch.setattr(engine, "stream_observations", lambda *args: _none())
        buffered = [_walk(client, url, params) for params in cases]
    for params, s, b in zip(cases, streamed, buffered, strict=True):
        assert [body for _, body in s] == [body for _, body in b], params
        assert all(etag for etag, _ in b)
    for s in streamed[:-1]:  # (the last is not streamed)
        assert all(etag is None for etag, body in s if len(body) > 200), "a streamed body has no ETag"
    assert all(etag for etag, _ in streamed[-1])
    assert len(streamed[0]) == 3 and len(streamed[1]) == 1
    (one,) = streamed[1]
    assert len(orjson.loads(one[1])["value"]) == READINGS
    assert orjson.loads(streamed[2][0][1])["@iot.count"] == READINGS
    assert len(streamed[4]) > 1 and len(streamed[5]) == 1


async def _none() -> None:
    return None


def test_an_influxdb_failure_mid_stream_cuts_the_body_short(ingested, influxdb, monkeypatch):
    real = AsyncInflux.query_chunks

    async def failing(self, q, **kwargs):
        async for i, chunk in _enumerate(real(self, q, **kwargs)):
            if i == 2:
                raise InfluxUnavailable("InfluxDB unreachable (mid-query): connection reset")
            yield chunk

    monkeypatch.setattr(engine, "STREAM_MIN_BYTES", 1)
    monkeypatch.setattr(observations, "CHUNK_ROWS", 100)
    settings = ApiSettings(influx_url=influxdb.url, influx_db=DATABASE)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        (ds,) = [d["@iot.id"] for d in client.get(
            "/sta/v1.1/Datastreams", params={"$filter": "name eq 'PM2.5'"}).json()["value"]]
        url = f"/sta/v1.1/Datastreams({ds})/Observations"
        whole = client.get(url, params={"$top": "500", "$count": "true"}).content
        monkeypatch.setattr(AsyncInflux, "query_chunks", failing)
        r = client.get(url, params={"$top": "500", "$count": "true"})
        assert r.status_code == 200 and r.headers.get("etag") is None, r.text
        assert whole.startswith(r.content) and len(r.content) < len(whole) and not r.content.endswith(b"]}")
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(r.content)
    with make_client(influxdb) as client:
        # What the server sees (Starlette: too late for the 503 handler), so uvicorn drops the
        # connection without the last chunk: the client reads an incomplete body, an error.
        with pytest.raises(RuntimeError, match="response already started") as raised:
            client.get(url, params={"$top": "500"})
        assert isinstance(raised.value.__cause__, InfluxUnavailable)


async def _enumerate(stream):
    i = 0
    async for x in stream:
        yield i, x
        i += 1


def test_errors_before_the_first_byte_are_proper_answers(ingested, influxdb):
    with make_client(influxdb) as client:
        (ds,) = [d["@iot.id"] for d in client.get(
            "/sta/v1.1/Datastreams", params={"$filter": "name eq 'PM2.5'"}).json()["value"]]
        url = f"/sta/v1.1/Datastreams({ds})/Observations"
        bad = client.get(url, params={"$top": "500", "$skiptoken": "nope"})
        assert bad.status_code == 400 and bad.json()["message"]
        bad = client.get(url, params={"$top": "500", "$select": "nope"})
        assert bad.status_code == 400 and bad.json()["message"]
        influxdb.stop()  # the catalogue stays loaded for a few seconds: the page's own statements fail
        gone = client.get(url, params={"$top": "500", "$count": "true"})
        assert gone.status_code == 503 and gone.json()["code"]
        gone = client.get(url, params={"$top": "500"})
        assert gone.status_code == 503 and gone.json()["code"]


def test_frost_client_reads_a_streamed_page_served_by_uvicorn(ingested, influxdb, tmp_path):
    port = free_port()
    with open(tmp_path / "api.log", "ab") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env={**os.environ, "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": DATABASE},
            cwd=Path(__file__).resolve().parents[3], stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=new_session_dying_with_parent)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    try:
        wait_until(up, timeout=30, message="uvicorn serving")
        service = frost.SensorThingsService(f"{base}/sta/v1.1")
        (pm25,) = service.datastreams().query().filter("name eq 'PM2.5'").list()
        got = list(pm25.get_observations().query().top(READINGS).list())
        assert len(got) == READINGS and len({o.id for o in got}) == READINGS
        assert [o.result_time for o in got] == sorted(o.result_time for o in got)
        for encoding in ("gzip", "identity"):
            r = httpx.get(f"{base}/sta/v1.1/Datastreams({pm25.id})/Observations",
                          params={"$top": str(READINGS), "$count": "true"}, headers={"Accept-Encoding": encoding})
            assert r.status_code == 200 and "etag" not in r.headers and "content-length" not in r.headers
            assert r.headers.get("transfer-encoding") == "chunked"
            assert r.headers.get("content-encoding") == (encoding if encoding == "gzip" else None)
            assert r.headers["cache-control"].startswith("public")
            body = r.json()
            assert body["@iot.count"] == READINGS and len(body["value"]) == READINGS
        small = httpx.get(f"{base}/sta/v1.1/Datastreams({pm25.id})/Observations", params={"$top": "10"})
        assert small.headers.get("etag") and small.headers.get("content-length")  # in one piece
    finally:
        procs.stop(api)


def test_gzip_compresses_a_streamed_body_part_by_part_fast_and_flushed():
    import asyncio
    import zlib

    from api.middleware import AdaptiveGZipMiddleware

    parts = [b'{"value":[' + b'{"a":1},' * 40_000, b'{"b":2},' * 30_000, b'{"c":3}]}']

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        for k, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": k < len(parts) - 1})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"accept-encoding", b"gzip")]}
    asyncio.run(AdaptiveGZipMiddleware(app, minimum_size=1024, compresslevel=9)(scope, receive, send))
    start, *bodies = sent
    headers = dict(start["headers"])
    assert headers[b"content-encoding"] == b"gzip" and b"content-length" not in headers
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # Each part arrives whole (flushed, not held for the next) and compressed (level 1 for a large first part)
    assert [inflate.decompress(m["body"]) for m in bodies] == parts
    assert len(bodies[0]["body"]) < len(parts[0]) // 20 and not bodies[-1].get("more_body")


def test_a_slow_reader_of_a_streamed_page_holds_no_query_slot(ingested, influxdb, monkeypatch):
    """InfluxDB's answer is read (and rendered) at InfluxDB's pace, not the client's: with one
    query slot, another query runs while the client has taken only the first part of the page."""
    import asyncio

    from api.sta import model, options
    from civicair.influx import InfluxBusy, InfluxSettings

    monkeypatch.setattr(engine, "STREAM_MIN_BYTES", 1)
    monkeypatch.setattr(observations, "CHUNK_ROWS", 50)

    async def run() -> tuple[bytes, bytes]:
        settings = ApiSettings(influx_url=influxdb.url, influx_db=DATABASE)
        influx = AsyncInflux(InfluxSettings(url=influxdb.url, database=DATABASE), max_concurrent=1,
                             queue_timeout_s=30)
        try:
            cat = await model.load(influx, settings)
            ctx = engine.Context("http://h/sta/v1.1", cat, influx, settings)
            (ds,) = [d for d in cat.all("Datastream") if d.prop == model.PM25]
            opts = options.parse([("$top", str(READINGS))])
            streamed = await engine.stream_observations(ctx, engine.ObsSource([ds]), opts, "http://h/x")
            assert streamed is not None and streamed.rest is not None
            try:
                await influx.query("SHOW MEASUREMENTS")  # the one slot: free, though the client reads no more
            except InfluxBusy:  # pragma: no cover - the failure this test is for
                pytest.fail("a streamed page held the query slot while its client was slow")
            return streamed.first, b"".join([part async for part in streamed.rest])
        finally:
            await influx.aclose()

    first, rest = asyncio.run(run())
    assert len(orjson.loads(first + rest)["value"]) == READINGS


def test_pages_cut_at_top_or_left_by_their_client_free_influxdbs_connection(sta, influxdb, monkeypatch):
    """Many pages whose last row comes before InfluxDB's answer ends, and readers that leave after
    the first part: each one's InfluxDB connection goes back to the pool (64) and its slot too."""
    import asyncio

    from api.sta import model, options
    from civicair.influx import InfluxSettings

    monkeypatch.setattr(engine, "STREAM_MIN_BYTES", 1)
    monkeypatch.setattr(observations, "CHUNK_ROWS", 7)

    async def run() -> list[int]:
        settings = ApiSettings(influx_url=influxdb.url, influx_db=DATABASE)
        influx = AsyncInflux(InfluxSettings(url=influxdb.url, database=DATABASE), max_concurrent=2,
                             queue_timeout_s=30)
        try:
            cat = await model.load(influx, settings)
            ctx = engine.Context("http://h/sta/v1.1", cat, influx, settings)
            (ds,) = [d for d in cat.all("Datastream") if d.prop == model.PM25 and d.station == "lab-1"]
            sizes = []
            for top, leave in ((179, False), (170, False), (100, True)):
                for _ in range(40):
                    opts = options.parse([("$top", str(top))])
                    streamed = await engine.stream_observations(ctx, engine.ObsSource([ds]), opts, "http://h/x")
                    assert streamed is not None and streamed.rest is not None
                    if leave:
                        await anext(streamed.rest)
                        await streamed.rest.aclose()  # type: ignore[attr-defined]
                    else:
                        sizes.append(len(orjson.loads(streamed.first + b"".join(
                            [part async for part in streamed.rest]))["value"]))
            await influx.query("SHOW MEASUREMENTS")
            return sizes
        finally:
            await influx.aclose()

    assert asyncio.run(run()) == [179] * 40 + [170] * 40
