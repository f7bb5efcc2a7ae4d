"""``civicair dashboards publish``: put the folder, datasource and dashboards on a Grafana.

For a Grafana that is not provisioned from files (a hosted or shared one). Uses
grafana-client with ``GRAFANA_URL`` and ``GRAFANA_TOKEN`` (a service-account token
with the Editor role, or Admin to manage the datasource).

Idempotent: every object is read first and written only when it differs from what
the code builds, so a second run reports "unchanged" for everything and writes
nothing. Grafana never returns a datasource's secrets, so they cannot be compared:
they are sent when the datasource is created, and again only with
``update_secrets=True`` (``--update-secrets``). A datasource that Grafana marks
read-only (provisioned from a file) is left alone.

The boards' hidden ``$rollup_rp`` constant is set to the rollups' retention policy
(``CIVICAIR_ROLLUP_RP``, as the rollup worker reads it; :mod:`dashboards.retention`)
before they are compared and sent, so a second run with the same policy is "unchanged".

The decisions are pure (:func:`plan_folder`, :func:`plan_datasource`,
:func:`plan_dashboard`); :func:`publish` is the thin shell that talks HTTP.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from dashboards import (
    DATABASE,
    DATASOURCE_NAME,
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    FOLDER_TITLE,
    FOLDER_UID,
    JSON_DIR,
    retention,
)
from dashboards.provisioning import MIN_INTERVAL

CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"

#: Keys Grafana adds to a stored dashboard; they are not ours to compare.
_SERVER_KEYS = ("id", "version")


class PublishError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # folder, datasource, dashboard
    name: str
    outcome: str  # created, updated, unchanged, skipped
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    """Where Grafana's datasource points, and how it authenticates (never printed)."""

    url: str
    database: str = DATABASE
    token: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> InfluxTarget:
        env = dict(os.environ if env is None else env)
        url = env.get("CIVICAIR_GRAFANA_INFLUX_URL")
        if not url:
            raise PublishError(
                "set CIVICAIR_GRAFANA_INFLUX_URL: the InfluxDB URL as Grafana's server reaches it")
        return cls(url=url, database=env.get("CIVICAIR_INFLUX_DB", DATABASE),
                   token=env.get("CIVICAIR_GRAFANA_INFLUX_TOKEN") or None,
                   username=env.get("CIVICAIR_GRAFANA_INFLUX_USER") or None,
                   password=env.get("CIVICAIR_GRAFANA_INFLUX_PASSWORD") or None)


def desired_datasource(target: InfluxTarget) -> tuple[dict[str, Any], dict[str, str]]:
    """The datasource body without secrets, and the secrets apart."""
    body: dict[str, Any] = {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": target.url,
        "isDefault": False,
        "jsonData": {"version": "InfluxQL", "dbName": target.database, "httpMode": "GET",
                     "timeInterval": MIN_INTERVAL},
    }
    secrets: dict[str, str] = {}
    if target.token:
        body["jsonData"]["httpHeaderName1"] = "Authorization"
        secrets["httpHeaderValue1"] = f"Token {target.token}"
    elif target.username:
        body["user"] = target.username
        secrets["password"] = target.password or ""
    return body, secrets


def _subset_differs(desired: Any, current: Any) -> bool:
    """Whether any key we set has another value on the server (extra server keys are fine)."""
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return True
        return any(_subset_differs(v, current.get(k)) for k, v in desired.items())
    return desired != current


def plan_folder(current: dict | None) -> str:
    if current is None:
        return CREATED
    return UNCHANGED if current.get("title") == FOLDER_TITLE else UPDATED


def plan_datasource(current: dict | None, desired: dict, update_secrets: bool) -> str:
    if current is None:
        return CREATED
    if current.get("readOnly"):
        return SKIPPED
    if _subset_differs(desired, current) or update_secrets:
        return UPDATED
    return UNCHANGED


def comparable(dashboard: dict) -> dict:
    return {k: v for k, v in dashboard.items() if k not in _SERVER_KEYS}


def plan_dashboard(current: dict | None, desired: dict) -> str:
    """``current`` is Grafana's ``GET /api/dashboards/uid/<uid>`` answer, or None."""
    if current is None:
        return CREATED
    same_body = comparable(current.get("dashboard", {})) == comparable(desired)
    same_folder = (current.get("meta") or {}).get("folderUid") == FOLDER_UID
    return UNCHANGED if same_body and same_folder else UPDATED


def load_dashboards(json_dir: Path = JSON_DIR, rollup_rp: str = "") -> list[dict]:
    """The boards to publish, reading the rollups from retention policy ``rollup_rp``."""
    boards = [retention.with_rollup_rp(json.loads(p.read_text()), rollup_rp)
              for p in sorted(Path(json_dir).glob("*.json"))]
    if not boards:
        # An installed (non-editable) package carries no JSON: publish from a checkout.
        raise PublishError(f"no dashboard JSON in {json_dir}: run `civicair dashboards build` in a checkout")
    return boards


def _get_or_none(fetch: Callable[[], Any]) -> Any:
    from grafana_client.client import GrafanaClientError

    try:
        return fetch()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def publish(api, target: InfluxTarget | None, *, json_dir: Path = JSON_DIR,
            update_secrets: bool = False, dry_run: bool = False, rollup_rp: str = "") -> list[Action]:
    """Create or update what differs; ``api`` is a ``grafana_client.GrafanaApi``.

    ``target`` None leaves the datasource out (a Grafana whose datasource is provisioned).
    ``rollup_rp``: the retention policy of the rollups (``CIVICAIR_ROLLUP_RP``; empty: the
    database's default policy).
    """
    actions: list[Action] = []
    try:
        rollup_rp = retention.checked(rollup_rp)
    except ValueError as exc:
        raise PublishError(str(exc)) from exc
    boards = load_dashboards(json_dir, rollup_rp)  # before any write: nothing to publish is an error

    folder = _get_or_none(lambda: api.folder.get_folder(FOLDER_UID))
    outcome = plan_folder(folder)
    if not dry_run:
        if outcome == CREATED:
            api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        elif outcome == UPDATED:
            api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
    actions.append(Action("folder", FOLDER_TITLE, outcome))

    if target is not None:
        body, secrets = desired_datasource(target)
        current = _get_or_none(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID))
        outcome = plan_datasource(current, body, update_secrets)
        if not dry_run:
            if outcome == CREATED:
                api.datasource.create_datasource({**body, "secureJsonData": secrets})
            elif outcome == UPDATED:
                payload = {**body, "version": current.get("version")}
                if update_secrets:
                    payload["secureJsonData"] = secrets
                api.datasource.update_datasource_by_uid(DATASOURCE_UID, payload)
        detail = "read-only (provisioned from a file)" if outcome == SKIPPED else ""
        actions.append(Action("datasource", DATASOURCE_NAME, outcome, detail))

    for board in boards:
        current = _get_or_none(partial(api.dashboard.get_dashboard, board["uid"]))
        outcome = plan_dashboard(current, board)
        if not dry_run and outcome != UNCHANGED:
            api.dashboard.update_dashboard({
                "dashboard": {**comparable(board), "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "civicair dashboards publish",
            })
        actions.append(Action("dashboard", board["title"], outcome))
    return actions


def connect(url: str | None = None, token: str | None = None):
    from grafana_client import GrafanaApi

    url = url or os.environ.get("GRAFANA_URL")
    token = token or os.environ.get("GRAFANA_TOKEN")
    if not url:
        raise PublishError("set GRAFANA_URL (e.g. https://grafana.example.org)")
    if not token:
        raise PublishError("set GRAFANA_TOKEN: a Grafana service-account token")
    return GrafanaApi.from_url(url, credential=token)
