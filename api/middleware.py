"""HTTP plumbing as plain ASGI middleware: ETag/Cache-Control/304, rate limit, response cache.

Plain ASGI (not ``BaseHTTPMiddleware``) so streaming bodies pass through untouched
and a request costs one extra function call. Order in :func:`api.app.create_app`,
outermost first: CORS -> rate limit -> response cache -> gzip -> conditional GET -> routes.
Gzip is Starlette's, with a faster level for large bodies (:class:`AdaptiveGZipMiddleware`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware, GZipResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

isal_zlib: Any
try:  # ISA-L: gzip several times faster than zlib (the server extra installs it)
    from isal import isal_zlib
except ImportError:  # pragma: no cover - zlib at ``large_level`` then
    isal_zlib = None

#: ISA-L's level for large bodies (0 … 3; 1: about zlib 1's size, several times faster).
FAST_LEVEL = 1


def etag_of(body: bytes) -> str:
    # Weak: the same representation may travel gzip-compressed or not (RFC 9110 §8.8.1).
    return 'W/"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


class ConditionalGetMiddleware:
    """``ETag`` (hash of the body) on every complete 200 response, ``304 Not Modified``
    on a matching ``If-None-Match``, and a ``Cache-Control`` on every response that has
    none. Streamed bodies (several chunks: a large CSV, a large SensorThings page) carry no
    ETag: it is not known before the body is sent."""

    def __init__(self, app: ASGIApp, max_age_s: int) -> None:
        self.app = app
        self.cache_ok = f"public, max-age={max_age_s}"

    def cache_control(self, status: int) -> str:
        return self.cache_ok if status < 500 and status != 429 else "no-store"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if_none_match = Headers(scope=scope).get("if-none-match")
        start: Message | None = None

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            head, start = start, None
            headers = MutableHeaders(scope=head)
            if "cache-control" not in headers:
                headers["Cache-Control"] = self.cache_control(head["status"])
            if message.get("more_body", False) or head["status"] != 200:
                await send(head)
                await send(message)
                return
            # A route that knows its body's identity (an archive file's sha256) keeps its own ETag.
            etag = headers.get("etag") or etag_of(message.get("body", b""))
            headers["ETag"] = etag
            if if_none_match and _matches(if_none_match, etag):
                kept = [(k, v) for k, v in head["headers"]
                        if k.lower() in (b"etag", b"cache-control", b"vary", b"link", b"date")]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
            await send(head)
            await send(message)

        await self.app(scope, receive, wrapped)


class RateLimitMiddleware:
    """Fixed-window request counter per client address.

    Every response carries ``X-RateLimit-Limit`` (requests per window),
    ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds until the window
    ends); over the limit the answer is ``429`` with ``Retry-After``. Counts live in
    this process: with several workers each enforces the limit on its own.
    """

    MAX_CLIENTS = 100_000  # bounds memory under a flood of distinct addresses

    def __init__(self, app: ASGIApp, limit: int, window_s: int, trust_forwarded: bool = False,
                 exempt: tuple[str, ...] = (), clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.limit = limit
        self.window_s = window_s
        self.trust_forwarded = trust_forwarded
        self.exempt = exempt
        self.clock = clock
        self.counts: dict[str, tuple[int, int]] = {}

    def client(self, scope: Scope) -> str:
        if self.trust_forwarded:
            forwarded = Headers(scope=scope).get("x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        client = scope.get("client")
        return client[0] if client else "unknown"

    def hit(self, key: str) -> tuple[int, int]:
        """Count one request; returns (requests in this window, seconds until it ends)."""
        now = self.clock()
        window = int(now // self.window_s)
        seen_window, count = self.counts.get(key, (window, 0))
        count = count + 1 if seen_window == window else 1
        if len(self.counts) >= self.MAX_CLIENTS and key not in self.counts:
            self.counts = {k: v for k, v in self.counts.items() if v[0] == window}
        self.counts[key] = (window, count)
        reset = max(1, math.ceil((window + 1) * self.window_s - now))
        return count, reset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        count, reset = self.hit(self.client(scope))
        limit_headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(0, self.limit - count)).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if count > self.limit:
            detail = f"rate limit of {self.limit} requests per {self.window_s} s exceeded; retry in {reset} s"
            body = orjson.dumps({"detail": detail, "code": "rate_limited"})
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(reset).encode()), (b"cache-control", b"no-store"), *limit_headers]})
            await send({"type": "http.response.body", "body": body})
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *limit_headers]
            await send(message)

        await self.app(scope, receive, wrapped)


class ResponseCacheMiddleware:
    """Serves a just-computed response again, for a few seconds, to identical GETs.

    For endpoints whose answer changes once per reading window but costs InfluxDB a
    pass over every station (``/v1/latest``, ``/v1/stations``, ``/v1/aqi``): a map
    opened by many people at once costs one query, not one per visitor. Concurrent
    misses on one key wait for the first (single flight). Keyed by path, query string,
    ``Accept`` and whether gzip is accepted; it sits outside gzip and the ETag
    middleware, so a hit costs neither compression nor hashing, and answers a matching
    ``If-None-Match`` with 304 itself. Only complete 200 responses are kept, at most
    ``max_entries``.
    """

    def __init__(self, app: ASGIApp, ttl_s: float, paths: tuple[str, ...], max_entries: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.ttl_s = ttl_s
        self.paths = frozenset(paths)
        self.max_entries = max_entries
        self.clock = clock
        self.entries: dict[tuple, tuple[float, Message, Message]] = {}
        self.inflight: dict[tuple, asyncio.Future] = {}

    def fresh(self, key: tuple) -> tuple[Message, Message] | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1], entry[2]

    def store(self, key: tuple, start: Message, body: Message) -> None:
        now = self.clock()
        if len(self.entries) >= self.max_entries:
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
            while len(self.entries) >= self.max_entries:
                self.entries.pop(next(iter(self.entries)))
        # Copies: the middleware outside mutates the messages it is sent (rate-limit headers).
        self.entries[key] = (now + self.ttl_s, {**start, "headers": list(start["headers"])}, dict(body))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        key = (scope["path"], scope.get("query_string", b""), request_headers.get("accept", ""),
               "gzip" in request_headers.get("accept-encoding", ""))
        while (hit := self.fresh(key)) is None and key in self.inflight:
            await asyncio.shield(self.inflight[key])
        if hit is not None:
            await self.replay(hit, request_headers.get("if-none-match"), send)
            return

        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.inflight[key] = done
        held: list[Message] = []
        passing = False

        async def capture(message: Message) -> None:
            nonlocal passing
            if passing:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and message.get("more_body", False):
                passing = True  # streamed: forward as it comes, keep nothing
                for m in held:
                    await send(m)
                held.clear()

        try:
            await self.app(scope, receive, capture)
            if not passing:
                if len(held) == 2 and held[0]["type"] == "http.response.start" and held[0]["status"] == 200:
                    self.store(key, held[0], held[1])
                for m in held:
                    await send(m)
        finally:
            del self.inflight[key]
            done.set_result(None)

    @staticmethod
    async def replay(hit: tuple[Message, Message], if_none_match: str | None, send: Send) -> None:
        start, body = hit
        etag = next((v.decode("latin-1") for k, v in start["headers"] if k.lower() == b"etag"), None)
        if if_none_match and etag and _matches(if_none_match, etag):
            kept = [(k, v) for k, v in start["headers"]
                    if k.lower() in (b"etag", b"cache-control", b"vary", b"link", b"date")]
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": list(start["headers"])})
        await send(dict(body))


class AdaptiveGZipMiddleware(GZipMiddleware):
    """Starlette's ``GZipMiddleware`` at ``compresslevel``, but a body whose first part is
    ``large_size`` bytes or more is compressed fast: by ISA-L (``isal``, level 1) where it is
    installed, else by zlib at ``large_level``.

    A 10,000-Observation SensorThings page is about 5.5 MB of JSON: zlib takes some 22 ms at
    level 5 and 11 ms at level 1 (337 KB); ISA-L level 1 under 2 ms, for 310 KB that clients
    also inflate a little faster. The small answers most clients ask for keep zlib's ratio.

    A streamed body (``more_body``: a large SensorThings page, api/sta/engine.py) is compressed
    part by part, each part flushed (``Z_SYNC_FLUSH``, Starlette's) so the client gets it at once;
    its first part decides the level, so a stream meant to be fast starts with 256 KiB or more."""

    def __init__(self, app: ASGIApp, minimum_size: int = 500, compresslevel: int = 9, *,
                 exclude_content_types: tuple[str, ...] = DEFAULT_EXCLUDED_CONTENT_TYPES,
                 large_size: int = 256 * 1024, large_level: int = 1) -> None:
        super().__init__(app, minimum_size, compresslevel, exclude_content_types=exclude_content_types)
        self.large_size = large_size
        self.large_level = large_level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "gzip" not in Headers(scope=scope).get("Accept-Encoding", ""):
            await super().__call__(scope, receive, send)  # (Starlette's identity path)
            return
        responder = _AdaptiveGZipResponder(
            self.app, self.minimum_size, compresslevel=self.compresslevel,
            thread_minimum_size=self.thread_minimum_size, exclude_content_types=self.exclude_content_types)
        responder.large_size, responder.large_level = self.large_size, self.large_level
        await responder(scope, receive, send)


class _AdaptiveGZipResponder(GZipResponder):
    large_size = 256 * 1024
    large_level = 1
    large: bool | None = None  # decided on the first part of the body
    fast: Any = None

    async def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        if self.large is None:
            self.large = len(body) >= self.large_size
            if self.large:
                self.compresslevel = self.large_level
        return await super().apply_compression(body, more_body=more_body)

    @property
    def compressor(self) -> Any:
        if not self.large or isal_zlib is None:
            return super().compressor
        if self.fast is None:
            self.fast = isal_zlib.compressobj(FAST_LEVEL, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
        return self.fast
