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

from api.deps import SettingsDep
from api.envelope import envelope
from api.errors import ApiError
from api.formats import json_response
from api.settings import ApiSettings

router = APIRouter(prefix="/v1", tags=["archive"])

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
            response_model=None)
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
            name="archive_file")
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
