"""Output formats: JSON (the ``{meta, results}`` envelope), CSV and GeoJSON.

CSV: RFC 4180 (comma, CRLF, UTF-8 without BOM), one header row whose names carry
their units (``pm25_mean (µg/m³)``), empty fields for missing values. Large raw
ranges stream (:func:`csv_stream`). Licence and attribution travel in the
``Link: <…>; rel="license"`` and ``X-Data-Attribution`` headers, since a CSV body
has no room for them.

Times: ``2026-01-01T00:00:00Z`` in UTC (the default), or with the offset of the
requested zone (``2026-01-01T01:00:00+01:00``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from api.envelope import JSONResponse
from api.settings import ApiSettings

CSV_MEDIA = "text/csv; charset=utf-8"
GEOJSON_MEDIA = "application/geo+json"
_ACCEPT = {"text/csv": "csv", "application/geo+json": "geojson", "application/json": "json"}


def negotiate(request: Request, explicit: str | None, allowed: Sequence[str]) -> str:
    """The format: ``format=`` if given, else the best of ``Accept`` we serve, else json."""
    if explicit:
        return explicit
    best, best_q = "json", 0.0
    for part in request.headers.get("accept", "").split(","):
        media, _, params = part.strip().partition(";")
        fmt = _ACCEPT.get(media.strip().lower())
        if fmt is None or fmt not in allowed:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = fmt, q
    return best


def licence_headers(settings: ApiSettings) -> dict[str, str]:
    headers = {"X-Data-Licence": _latin1(settings.licence),
               "X-Data-Attribution": _latin1(settings.attribution)}
    if settings.licence_url:
        headers["Link"] = f'<{_latin1(settings.licence_url)}>; rel="license"'
    return headers


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1").replace("\r", " ").replace("\n", " ")


def json_response(content: Any, settings: ApiSettings, status_code: int = 200,
                  media_type: str | None = None) -> Response:
    return JSONResponse(content, status_code=status_code, headers=licence_headers(settings),
                        media_type=media_type)


# -- CSV ---------------------------------------------------------------------------------------


#: First characters a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str) and value.startswith(FORMULA_START):
        # Text volunteers control (a station's name, via its meta message) must not run as
        # a formula when an analyst opens the file: a leading ' makes it plain text.
        return "'" + value
    return value


def csv_header(columns: Sequence[str], units: dict[str, str]) -> list[str]:
    return [f"{c} ({units[c]})" if c in units else c for c in columns]


def csv_text(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    if header is not None:
        writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def _csv_headers(settings: ApiSettings, name: str) -> dict[str, str]:
    return licence_headers(settings) | {"Content-Disposition": f'attachment; filename="civicair-{name}.csv"'}


def csv_response(columns: Sequence[str], units: dict[str, str], rows: Iterable[Sequence[Any]],
                 settings: ApiSettings, name: str) -> Response:
    text = csv_text(rows, csv_header(columns, units))
    return Response(text.encode(), media_type=CSV_MEDIA, headers=_csv_headers(settings, name))


def csv_stream(columns: Sequence[str], units: dict[str, str], pages: AsyncIterator[Iterable[Sequence[Any]]],
               settings: ApiSettings, name: str) -> StreamingResponse:
    """A CSV body written page by page as ``pages`` yields them (memory: one page).

    If the database fails half-way, the generator raises and the server drops the
    connection without the final chunk: the client sees an incomplete transfer,
    never a silently short file.
    """

    async def body() -> AsyncIterator[bytes]:
        yield csv_text((), csv_header(columns, units)).encode()
        async for page in pages:
            yield csv_text(page).encode()

    return StreamingResponse(body(), media_type=CSV_MEDIA, headers=_csv_headers(settings, name))


# -- GeoJSON (RFC 7946) --------------------------------------------------------------------------


def feature(fid: str, lat: float | None, lon: float | None, properties: dict[str, Any]) -> dict[str, Any]:
    geometry = {"type": "Point", "coordinates": [lon, lat]} if lat is not None and lon is not None else None
    return {"type": "Feature", "id": fid, "geometry": geometry, "properties": properties}


def feature_collection(features: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    # ``meta`` is a foreign member (RFC 7946 §6.1): licence and attribution travel with the map.
    return {"type": "FeatureCollection", "features": features, "meta": meta}
