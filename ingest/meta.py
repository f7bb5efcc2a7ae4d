"""Station status and metadata from their retained MQTT topics: the ingest's side.

``civicair/v1/{station}/meta`` carries a JSON object, ``…/status`` carries ``online``
or ``offline`` (the bridge's last will). The points for both are built by
:mod:`civicair.schema.storage`, the one writer of the ``station`` measurement; this
module only decodes the JSON.

Pure: payload bytes and a timestamp in, one line of line protocol out, or
:class:`~civicair.schema.errors.ContractError` / :class:`~civicair.schema.storage.MetaError`
with a reason for the dead letter. The consumer owns MQTT, the clock and the write.
"""

from __future__ import annotations

from typing import Any

import orjson

from civicair.schema.storage import MetaError, meta_to_line, status_line

__all__ = ["MetaError", "meta_line", "status_line"]


def meta_line(station: str, payload: bytes, ts: int) -> bytes:
    """The ``station`` point of a meta payload (JSON object), or MetaError."""
    try:
        meta: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MetaError(f"meta is not valid JSON: {exc}") from exc
    return meta_to_line(station, meta, ts)
