"""The retention policy the dashboards read the rollups from (``$rollup_rp``).

The rollup worker writes ``pm_1h``, ``pm_1d`` and ``pm_nowcast`` to the policy named by
``CIVICAIR_ROLLUP_RP`` (default: the database's default policy). Every board that reads
them carries a hidden constant variable :data:`VARIABLE` and names its rollup
measurements ``"$rollup_rp"."pm_1h"``: empty (the committed default) is InfluxDB's
``""."pm_1h"``, the default policy; ``forever`` gives ``"forever"."pm_1h"``.

``civicair dashboards publish`` sets it from ``CIVICAIR_ROLLUP_RP``, ``civicair dashboards
build --rollup-rp NAME --out DIR`` writes boards with it set for a file-provisioned Grafana,
and ``civicair dashboards check --rollup-rp NAME`` runs the queries with it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

#: The dashboard variable's name, and the environment variable the rollup worker reads.
VARIABLE = "rollup_rp"
ENV = "CIVICAIR_ROLLUP_RP"
#: What the rollup worker accepts (rollup/settings.py): a name InfluxQL needs no escape for.
_NAME_RE = re.compile(r"[A-Za-z0-9_-]*\Z")


def checked(name: str | None) -> str:
    """The policy name, ``""`` for the default policy; a clear error for anything else."""
    name = (name or "").strip()
    if not _NAME_RE.match(name):
        raise ValueError(f"rollup retention policy {name!r}: letters, digits, '_' and '-' only "
                         f"(as {ENV} of the rollup worker)")
    return name


def source(measurement: str) -> str:
    """A rollup measurement in the rollups' policy, as a dashboard query names it."""
    return f'"${VARIABLE}"."{measurement}"'


def with_rollup_rp(board: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of a board's JSON with its :data:`VARIABLE` constant set to ``name``.

    A board without the variable is returned unchanged (a copy): it reads no rollup.
    """
    name = checked(name)
    out = copy.deepcopy(board)
    for var in (out.get("templating") or {}).get("list", []) or []:
        if var.get("name") == VARIABLE and var.get("type") == "constant":
            var["query"] = name
    return out


def rollup_rp_of(board: dict[str, Any]) -> str | None:
    """The policy a board's JSON reads the rollups from, None if it has no such variable."""
    for var in (board.get("templating") or {}).get("list", []) or []:
        if var.get("name") == VARIABLE and var.get("type") == "constant":
            return str(var.get("query") or "")
    return None
