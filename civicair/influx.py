"""The one InfluxDB client: line protocol to ``POST /write``, InfluxQL to ``GET /query``.

That API is served by InfluxDB 1.x natively, 2.x through its v1 compatibility
endpoints and 3 Core natively, so there is one code path. Credentials go in
headers (``Authorization: Token …`` or HTTP basic), never in a URL that a proxy
or access log would record.

Errors are split the way a writer must act on them:
:class:`InfluxUnavailable` (connection refused, timeout, 5xx: retry with backoff)
and :class:`InfluxRejected` (4xx: the data or the query is wrong; do not retry).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from civicair.schema.errors import CivicairError


class InfluxError(CivicairError):
    """InfluxDB could not do what was asked."""


class InfluxUnavailable(InfluxError):
    """The server is down, slow or failing (5xx): try again later."""


class InfluxRejected(InfluxError):
    """The server refused the request (4xx): the payload or query is at fault."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB answered {status}: {message}")
        self.status = status
        self.message = message

    @property
    def missing_policy(self) -> bool:
        """The query names a retention policy the database does not have (the rollups' named
        policy before `civicair rollup init` created it)."""
        return "retention policy not found" in self.message


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    url: str = "http://localhost:8086"
    database: str = "airquality"
    token: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


def _auth_headers(s: InfluxSettings) -> tuple[dict[str, str], httpx.BasicAuth | None]:
    if s.token:
        return {"Authorization": f"Token {s.token}"}, None
    if s.username:
        return {}, httpx.BasicAuth(s.username, s.password or "")
    return {}, None


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 500:
        raise InfluxUnavailable(f"InfluxDB answered {resp.status_code}: {resp.text[:300]}")
    if resp.status_code >= 400:
        try:
            message = orjson.loads(resp.content).get("error", resp.text)
        except (orjson.JSONDecodeError, AttributeError):
            message = resp.text
        raise InfluxRejected(resp.status_code, str(message)[:500])


class Influx:
    """Synchronous client (the ingest writer thread, the CLI, the tests)."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        headers, auth = _auth_headers(settings)
        self._http = httpx.Client(base_url=settings.url, headers=headers, auth=auth,
                                  timeout=settings.timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Influx:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ping(self) -> bool:
        try:
            return self._http.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def write(self, lines: bytes, precision: str = "s", rp: str | None = None) -> None:
        """``rp``: a retention policy (1.x; on 2.x the bucket its DBRP mapping names)."""
        params = {"db": self.settings.database, "precision": precision} | ({"rp": rp} if rp else {})
        try:
            resp = self._http.post("/write", params=params, content=lines)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.settings.url}: {exc}") from exc
        _raise_for(resp)

    def query(self, q: str, *, epoch: str = "s", method: str = "GET") -> list[dict[str, Any]]:
        """Run InfluxQL; returns the ``results`` list (one entry per statement)."""
        params = {"db": self.settings.database, "q": q, "epoch": epoch}
        try:
            if method == "POST":
                resp = self._http.post("/query", data=params)
            else:
                resp = self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.settings.url}: {exc}") from exc
        _raise_for(resp)
        return results(resp.content)

    @contextmanager
    def query_csv(self, q: str, *, chunk_size: int = 10_000, epoch: str = "s") -> Iterator[io.BufferedReader]:
        """Run one InfluxQL statement with ``chunked=true`` and CSV output; yield the body as a
        binary file that reads from the network as it is read (never the whole result in memory).

        InfluxDB writes one header (``name,tags,time,<columns>``) and then one row per point,
        chunk after chunk. A connection lost mid-stream raises :class:`InfluxUnavailable` from
        ``read``; a refused statement raises :class:`InfluxRejected` before anything is read.
        """
        params = {"db": self.settings.database, "q": q, "epoch": epoch, "chunked": "true",
                  "chunk_size": str(int(chunk_size))}
        try:
            with self._http.stream("GET", "/query", params=params,
                                   headers={"Accept": "application/csv"}) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                yield io.BufferedReader(_StreamBody(resp.iter_bytes(), self.settings.url), 1 << 20)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.settings.url} (mid-query): {exc}") \
                from exc

    def create_database(self) -> None:
        # CREATE DATABASE is idempotent; the name is an identifier we validate.
        self.query(f"CREATE DATABASE {quote_ident(self.settings.database)}", method="POST")


class InfluxBusy(InfluxUnavailable):
    """Every query slot stayed taken for the queue timeout: the database is busy."""


class AsyncInflux:
    """Asynchronous client for the API (one pooled httpx.AsyncClient per app).

    ``max_concurrent`` queries run at once; others wait for a slot up to
    ``queue_timeout_s`` and then raise :class:`InfluxBusy`, so that a burst of heavy
    requests queues in the API (or is told to come back) instead of piling onto InfluxDB,
    which every reader and the ingest share. Create it inside the event loop that uses it.
    """

    def __init__(self, settings: InfluxSettings, max_concurrent: int | None = None,
                 queue_timeout_s: float = 5.0) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        self._queue_timeout_s = queue_timeout_s
        headers, auth = _auth_headers(settings)
        self._http = httpx.AsyncClient(
            base_url=settings.url, headers=headers, auth=auth, timeout=settings.timeout_s,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ping(self) -> bool:
        try:
            return (await self._http.get("/ping")).status_code == 204
        except httpx.HTTPError:
            return False

    async def _take_slot(self) -> None:
        """Wait for a query slot (when slots are limited); InfluxBusy after the queue timeout."""
        if self._slots is not None:
            try:
                await asyncio.wait_for(self._slots.acquire(), self._queue_timeout_s)
            except TimeoutError:
                raise InfluxBusy(f"every query slot was taken for {self._queue_timeout_s:g} s") from None

    async def query(self, q: str, *, epoch: str | None = "s") -> list[dict[str, Any]]:
        # epoch None: times come as RFC 3339 strings (httpx sends an empty ``epoch``).
        params = {"db": self.settings.database, "q": q, "epoch": epoch}
        await self._take_slot()
        try:
            resp = await self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.settings.url}: {exc}") from exc
        finally:
            if self._slots is not None:
                self._slots.release()
        _raise_for(resp)
        return results(resp.content)

    async def query_chunks(self, q: str, *, chunk_size: int = 1000,
                           epoch: str | None = "s") -> AsyncGenerator[bytes, None]:
        """:meth:`query` as InfluxDB streams it (``chunked=true``): the JSON text of each chunk of
        at most ``chunk_size`` rows as soon as it arrives (its ``results``: :func:`results`), so
        the caller works on one while InfluxDB writes the next. A statement's series may span
        chunks (marked ``partial``). The caller parses, so that it decides when (and with what
        else) the chunk's many small objects live.

        Asked for uncompressed: on the link an API shares with its database, InfluxDB's gzip
        costs more time than the bytes it saves (a 10,000-row answer: about a third of it).
        A server that does not chunk answers in one piece, which reads as one chunk."""
        params = {"db": self.settings.database, "q": q, "epoch": epoch, "chunked": "true",
                  "chunk_size": str(int(chunk_size))}
        await self._take_slot()
        try:
            async with self._http.stream("GET", "/query", params=params,
                                         headers={"Accept-Encoding": "identity"}) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    _raise_for(resp)
                pending = b""
                async for data in resp.aiter_bytes():
                    *lines, pending = (pending + data).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield line
                if pending.strip():
                    yield pending
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.settings.url}: {exc}") from exc
        finally:
            if self._slots is not None:
                self._slots.release()


class _StreamBody(io.RawIOBase):
    """A streamed response body as a raw binary file (for readers that want ``read``)."""

    def __init__(self, chunks: Iterator[bytes], url: str) -> None:
        self._chunks = chunks
        self._url = url
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
            except httpx.HTTPError as exc:
                raise InfluxUnavailable(f"InfluxDB unreachable at {self._url} (mid-query): {exc}") from exc
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def results(content: bytes) -> list[dict[str, Any]]:
    """The ``results`` of a /query answer (or of one chunk of it); :class:`InfluxRejected` for
    a statement InfluxDB refused, or for an answer it could not encode: a result beyond the
    float range (the sum behind a mean of stored values near 1e308 is ±Inf, which InfluxDB
    reports as a 200 whose body is not JSON)."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise InfluxRejected(200, "InfluxDB could not encode its answer (a result beyond the float "
                                  f"range?): {content[:300].decode('utf-8', 'replace').strip()}") from None
    out = body.get("results", [])
    for r in out:
        if "error" in r:
            raise InfluxRejected(400, r["error"])
    return out


def series(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The series of one statement's result (empty when it matched nothing)."""
    return result.get("series", []) or []


def quote_ident(name: str, allowed: Collection[str] | None = None) -> str:
    """``name`` as a double-quoted InfluxQL identifier: the one quoting rule of civicair.

    With ``allowed``, only a name on that fixed list passes (fields, functions, intervals);
    without, only letters, digits, ``_`` and ``-`` (database and measurement names from
    settings or the schema). Anything else is a ValueError: no identifier is escaped,
    so none can end the quotes.
    """
    if allowed is not None:
        if name not in allowed:
            raise ValueError(f"unknown name {name!r}")
    elif not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"not a safe InfluxQL identifier: {name!r}")
    return '"' + name + '"'
