"""/v1/archive: the open-data archive's days, and its files.

``GET /v1/archive`` lists every archived day (links, bytes, sha256, rows, updated, whether
the day is final) from ``v1/datapackage.json`` under ``archive_dir``. ``GET
/v1/archive/{path}`` serves a file the data package lists (and the package itself), with
``ETag`` (the file's sha256), ``Content-Length`` and, for a final day,
``Cache-Control: public, max-age=31536000, immutable``. Only listed files are served:
a path is looked up, never joined onto the directory as given.

Reads files only; never writes (``civicair archive build`` does).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from api.deps import SettingsDep
from api.envelope import envelope
from api.errors import ApiError
from api.formats import json_response
from api.schemas import Error, Meta, example, responses
from api.settings import ApiSettings

router = APIRouter(prefix="/v1", tags=["archive"])


class ArchiveFile(BaseModel):
    format: str = Field(description="`parquet` or `csv.gz`")
    url: str = Field(description="Path of the file under this API")
    bytes: int
    sha256: str = Field(description="Hex digest of the file; also its ETag")


class ArchiveDay(BaseModel):
    day: str = Field(description="UTC day, YYYY-MM-DD")
    rows: int | None = Field(description="Readings in the day's files")
    updated: str = Field(description="When the day's files were last written (UTC)")
    complete: bool = Field(description="The day was over when it was built (false: a partial day)")
    final: bool = Field(description="No late reading can change the day any more; its files are immutable")
    files: list[ArchiveFile]


class ArchiveResponse(BaseModel):
    meta: Meta
    results: list[ArchiveDay]


_EXAMPLE = example(
    [{"day": "2026-11-29", "rows": 1440000, "updated": "2026-11-30T00:31:12Z", "complete": True,
      "final": False,
      "files": [{"format": "parquet", "url": "/v1/archive/readings/year=2026/month=11/2026-11-29.parquet",
                 "bytes": 3812345, "sha256": "9f2c…"}]}],
    units={}, query={}, datapackage="/v1/archive/datapackage.json", stations="/v1/archive/stations.csv")
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file, as stored (never compressed again).",
          "content": {"application/vnd.apache.parquet": _BINARY, "application/gzip": _BINARY,
                      "text/csv": {"schema": {"type": "string"}},
                      "application/json": {"schema": {"type": "object"},
                                           "example": {"name": "civicair-readings", "resources": []}}},
          "headers": {"ETag": {"description": "The file's sha256, quoted",
                               "schema": {"type": "string"}},
                      "Content-Length": {"description": "Size in bytes", "schema": {"type": "integer"}},
                      "Cache-Control": {"description": "`immutable` (a year) for a final day",
                                        "schema": {"type": "string"}}}},
    304: {"description": "Not modified (the ETag sent in If-None-Match still matches)."},
    404: {"model": Error, "description": "No such file in the archive."},
    429: {"model": Error, "description": "Rate limit exceeded; see Retry-After and X-RateLimit-*."},
    503: {"model": Error, "description": "The archive's data package is being rewritten; try again."},
}

VERSION_DIR = "v1"
PACKAGE = "datapackage.json"
IMMUTABLE = "public, max-age=31536000, immutable"
_MEDIA = {".parquet": "application/vnd.apache.parquet", ".gz": "application/gzip",
          ".csv": "text/csv; charset=utf-8",
          ".json": "application/json"}
#: Served although no resource names them: the package itself and the schema it refers to.
_PACKAGE_FILES = (PACKAGE, "readings.schema.json")


def _package(settings: ApiSettings) -> dict[str, Any]:
    path = Path(settings.archive_dir) / VERSION_DIR / PACKAGE
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {"resources": []}
    except orjson.JSONDecodeError as exc:
        raise ApiError(503, "archive_unavailable", "the archive's data package is being rewritten or broken; "
                                                   "try again shortly") from exc


def _today() -> date:
    return datetime.now(UTC).date()


def _final(day: str, settings: ApiSettings) -> bool:
    """Final: ended more than ``archive_final_after_days`` ago (the rule of archive/build.py)."""
    return (_today() - date.fromisoformat(day)).days > settings.archive_final_after_days


@router.get("/archive", summary="The open-data archive: one Parquet and one CSV.gz file per UTC day",
            response_model=None, responses=responses(ArchiveResponse, _EXAMPLE))
async def archive_index(request: Request, settings: SettingsDep) -> Response:
    """Every archived day, newest first: its files (`url`, `bytes`, `sha256`), `rows`, when it
    was last written (`updated`), whether the day is `complete` (over when built) and `final`
    (no late reading can change it any more). `meta.datapackage` links the Frictionless data
    package that describes every column; docs/archive.md shows one-line reads."""
    base = request.url_for("archive_file", path="").path
    days: dict[str, dict[str, Any]] = {}
    for res in _package(settings).get("resources", []):
        if "day" not in res:
            continue
        entry = days.setdefault(res["day"], {"day": res["day"], "rows": None, "updated": res["updated"],
                                             "complete": res.get("complete", False),
                                             "final": _final(res["day"], settings), "files": []})
        if "rows" in res:
            entry["rows"] = res["rows"]
        entry["files"].append({"format": "csv.gz" if res.get("compression") == "gz" else res["format"],
                               "url": base + res["path"], "bytes": res["bytes"],
                               "sha256": res["hash"].removeprefix("sha256:")})
    results = [days[d] for d in sorted(days, reverse=True)]
    body = envelope(settings, results, {}, units={}, datapackage=base + PACKAGE,
                    stations=base + "stations.csv")
    return json_response(body, settings)


def _hash_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@router.get("/archive/{path:path}", summary="A file of the archive", response_model=None,
            name="archive_file", responses=_FILE_RESPONSES)
async def archive_file(path: str, request: Request, settings: SettingsDep) -> Response:
    """A file the data package lists, or the package itself. `ETag` is the file's sha256;
    files of final days are `immutable`."""
    root = Path(settings.archive_dir) / VERSION_DIR
    listed = {res["path"]: res for res in _package(settings).get("resources", []) if "path" in res}
    if path not in listed and path not in _PACKAGE_FILES:
        raise ApiError(404, "not_found", "no such file in the archive; GET /v1/archive lists them")
    file = root / path
    if not file.is_file():
        raise ApiError(404, "not_found", "no such file in the archive; GET /v1/archive lists them")
    res = listed.get(path)
    if res is not None and "hash" in res:
        sha = res["hash"].removeprefix("sha256:")
    else:
        sha = _hash_of(file)
    final = res is not None and "day" in res and _final(res["day"], settings)
    headers = {"ETag": f'"{sha}"',
               "Cache-Control": IMMUTABLE if final
               else f"public, max-age={settings.cache_max_age_s}, must-revalidate"}
    if _etag_matches(request.headers.get("if-none-match"), sha):
        return Response(status_code=304, headers=headers)
    media = _MEDIA.get(file.suffix, "application/octet-stream")
    return FileResponse(file, media_type=media, headers=headers, filename=file.name,
                        content_disposition_type="attachment" if file.suffix in (".parquet", ".gz")
                        else "inline")


def _etag_matches(if_none_match: str | None, sha: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or f'"{sha}"' in tags
