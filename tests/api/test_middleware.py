"""The response cache (single flight, TTL, what it keeps) and the rate limiter's clock,
on a bare ASGI app: no database needed."""

from __future__ import annotations

import asyncio
import zlib

import httpx

from api.middleware import AdaptiveGZipMiddleware, RateLimitMiddleware, ResponseCacheMiddleware
from tests.api.conftest import make_client, pm_line, write


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_app(status: int = 200, chunks: int = 1, delay: float = 0.0):
    calls = {"n": 0}

    async def app(scope, receive, send):
        calls["n"] += 1
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(chunks):
            await send({"type": "http.response.body", "body": f"{calls['n']}:{i};".encode(),
                        "more_body": i < chunks - 1})

    return app, calls


async def get_many(app, paths: list[str], headers: dict | None = None) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await asyncio.gather(*(client.get(p, headers=headers) for p in paths))


def test_concurrent_identical_requests_share_one_computation():
    inner, calls = counting_app(delay=0.05)
    clock = Clock()
    app = ResponseCacheMiddleware(inner, ttl_s=10, paths=("/v1/latest",), clock=clock)
    responses = asyncio.run(get_many(app, ["/v1/latest"] * 20))
    assert calls["n"] == 1 and {r.text for r in responses} == {"1:0;"}
    assert asyncio.run(get_many(app, ["/v1/latest?format=csv"]))[0].text == "2:0;"  # another key
    clock.now += 10.5  # expired
    assert asyncio.run(get_many(app, ["/v1/latest"]))[0].text == "3:0;"
    assert asyncio.run(get_many(app, ["/v1/stations/x"] * 2))[1].text == "5:0;"  # not a cached path


def test_errors_and_streams_are_not_kept():
    for status, chunks in ((503, 1), (200, 3)):
        inner, calls = counting_app(status=status, chunks=chunks)
        app = ResponseCacheMiddleware(inner, ttl_s=10, paths=("/v1/latest",), clock=Clock())
        first, second = asyncio.run(get_many(app, ["/v1/latest", "/v1/latest"]))
        assert calls["n"] == 2
        assert first.status_code == status and first.text.count(";") == chunks


def test_cache_is_bounded():
    inner, _ = counting_app()
    app = ResponseCacheMiddleware(inner, ttl_s=10, paths=("/v1/latest",), max_entries=3, clock=Clock())
    asyncio.run(get_many(app, [f"/v1/latest?stations=s{i}" for i in range(10)]))
    assert len(app.entries) <= 3


def test_rate_limit_window_resets():
    inner, _ = counting_app()
    clock = Clock()
    app = RateLimitMiddleware(inner, limit=2, window_s=60, clock=clock)
    codes = [r.status_code for r in asyncio.run(get_many(app, ["/a"] * 3))]
    assert sorted(codes) == [200, 200, 429]
    clock.now += 60
    (r,) = asyncio.run(get_many(app, ["/a"]))
    assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "1"


def test_latest_is_served_from_the_cache_within_its_ttl(influxdb, influx):
    import time

    now = int(time.time()) // 60 * 60
    write(influx, [pm_line("lab-1", now - 120, pm25=5.0)])
    with make_client(influxdb) as cached, make_client(influxdb, response_cache_s=0) as fresh:
        first = cached.get("/v1/latest")
        [older] = first.json()["results"]
        assert older["pm25"] == 5
        write(influx, [pm_line("lab-1", now - 60, pm25=9.0)])
        again = cached.get("/v1/latest")  # up to 10 s old: the stored answer, byte for byte
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
        [newer] = fresh.get("/v1/latest").json()["results"]
        assert newer["pm25"] == 9 and newer["time"] > older["time"]


def test_cache_hits_keep_etag_gzip_and_answer_if_none_match(influxdb, influx):
    import time

    now = int(time.time()) // 60 * 60
    write(influx, [pm_line(f"s-{i:03d}", now - 120, pm25=5.0) for i in range(40)])  # > 1 KiB: gzipped
    with make_client(influxdb) as client:
        first = client.get("/v1/latest", headers={"Accept-Encoding": "gzip"})
        hit = client.get("/v1/latest", headers={"Accept-Encoding": "gzip"})
        assert first.headers["content-encoding"] == hit.headers["content-encoding"] == "gzip"
        assert hit.headers["etag"] == first.headers["etag"] and hit.content == first.content
        plain = client.get("/v1/latest", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == first.json()
        again = client.get("/v1/latest", headers={"If-None-Match": first.headers["etag"],
                                                  "Accept-Encoding": "gzip"})
        assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]


def test_gzip_compresses_large_bodies_fast_and_small_ones_at_the_configured_level():
    from isal import isal_zlib

    def gzipped(body: bytes, level: int, module=zlib) -> bytes:
        z = module.compressobj(level, module.DEFLATED, 16 + module.MAX_WBITS)
        return z.compress(body) + z.flush()

    bodies = {"/small": b"".join(b"%d reading, " % i for i in range(400)),  # about 5 KB
              "/large": b"".join(b"%d reading, " % i for i in range(40_000))}  # about 550 KB

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": bodies[scope["path"]]})

    wrapped = AdaptiveGZipMiddleware(app, minimum_size=1024, compresslevel=9, large_size=256 * 1024)

    async def raw(path: str, encoding: str) -> tuple[httpx.Headers, bytes]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as c:
            async with c.stream("GET", path, headers={"Accept-Encoding": encoding}) as r:
                return r.headers, b"".join([chunk async for chunk in r.aiter_raw()])

    for path, expected in (("/small", gzipped(bodies["/small"], 9)),
                           ("/large", gzipped(bodies["/large"], 1, isal_zlib))):  # ISA-L's level 1
        headers, body = asyncio.run(raw(path, "gzip"))
        assert headers["content-encoding"] == "gzip" and body == expected, path
        assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == bodies[path]
        headers, body = asyncio.run(raw(path, "identity"))
        assert "content-encoding" not in headers and body == bodies[path]
