"""``civicair dashboards build``: write the dashboards' JSON and the provisioning YAML.

The output is committed. ``--check`` writes nothing and fails if a committed file
differs from what the code builds (CI and the tests use it), so a dashboard edited
by hand, or code changed without a rebuild, does not go unnoticed.

The committed boards read the rollups from the database's default retention policy
(``$rollup_rp`` empty, :mod:`dashboards.retention`). For a Grafana provisioned from files
whose rollups live in a named policy, ``civicair dashboards build --rollup-rp NAME --out DIR``
writes the boards with it set into ``DIR`` (the JSON only; mount ``DIR`` where the
provisioning file points).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dashboards import JSON_DIR, PROVISIONING_DIR, provisioning, retention
from dashboards.boards import BOARDS


def render_dashboard(name: str, rollup_rp: str = "") -> str:
    board = retention.with_rollup_rp(BOARDS[name](), rollup_rp)
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def outputs(json_dir: Path = JSON_DIR, provisioning_dir: Path | None = PROVISIONING_DIR,
            rollup_rp: str = "") -> dict[Path, str]:
    """Every file the build writes, with its content (no provisioning files with ``None``)."""
    files = {json_dir / f"{name}.json": render_dashboard(name, rollup_rp) for name in BOARDS}
    if provisioning_dir is not None:
        files |= {provisioning_dir / rel: provisioning.render(rel) for rel in provisioning.FILES}
    return files


@dataclass(frozen=True, slots=True)
class BuildResult:
    written: list[Path]
    unchanged: list[Path]
    stale: list[Path]  # differ from the build (only reported with check=True)


def build(json_dir: Path = JSON_DIR, provisioning_dir: Path | None = PROVISIONING_DIR,
          check: bool = False, rollup_rp: str = "") -> BuildResult:
    """Write (or with ``check``, compare) the boards and the provisioning files.

    ``rollup_rp`` names the rollups' retention policy; the committed JSON keeps the default
    (empty), so a policy needs another ``json_dir`` (ValueError otherwise, and for a name
    the rollup worker would not accept).
    """
    rollup_rp = retention.checked(rollup_rp)
    if rollup_rp and Path(json_dir).resolve() == JSON_DIR.resolve():
        raise ValueError(f"the committed boards keep the default retention policy: write boards for "
                         f"{rollup_rp!r} elsewhere (--out DIR)")
    written, unchanged, stale = [], [], []
    for path, content in outputs(Path(json_dir), provisioning_dir, rollup_rp).items():
        current = path.read_text() if path.exists() else None
        if current == content:
            unchanged.append(path)
        elif check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            written.append(path)
    return BuildResult(written, unchanged, stale)
