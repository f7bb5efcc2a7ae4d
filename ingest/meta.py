"""Station status and metadata from their retained MQTT topics: the ingest's side.

``civicair/v1/{station}/meta`` carries a JSON object; the line for it is built by
:func:`api.stationmeta.meta_to_line`, which owns the ``station`` measurement's schema
(the API reads what it writes). ``…/status`` carries ``online`` or ``offline`` (the
bridge's last will); :func:`status_line` writes it as a point of the same measurement
with the single field ``status``, which is how the API tells the two apart.

Pure: payload bytes and a timestamp in, one line of line protocol out, or
:class:`~firmware_bridge.errors.ContractError` /
:class:`~api.stationmeta.MetaError` with a reason for the dead letter. The consumer
owns MQTT, the clock and the write.
"""

from __future__ import annotations

from typing import Any

import orjson

from api.stationmeta import MEASUREMENT, MetaError, meta_to_line
from firmware_bridge import contract
from firmware_bridge.errors import ContractError

STATUSES = (b"online", b"offline")

__all__ = ["MetaError", "meta_line", "status_line"]


def meta_line(station: str, payload: bytes, ts: int) -> bytes:
    """The ``station`` point of a meta payload (JSON object), or MetaError."""
    try:
        meta: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MetaError(f"meta is not valid JSON: {exc}") from exc
    return meta_to_line(station, meta, ts)


def status_line(station: str, payload: bytes, ts: int) -> bytes:
    """The ``station`` point of a status payload (``online``/``offline``)."""
    if not contract.is_station_id(station):
        raise ContractError(f"station id {station!r} must match {contract.STATION_ID_PATTERN}")
    status = payload.strip()
    if status not in STATUSES:
        raise ContractError(f"status must be 'online' or 'offline', got {payload[:40]!r}")
    return f'{MEASUREMENT},station={station} status="{status.decode()}" {int(ts)}\n'.encode()
