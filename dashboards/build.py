"""``civicair dashboards build``: write the dashboards' JSON and the provisioning YAML.

The output is committed. ``--check`` writes nothing and fails if a committed file
differs from what the code builds (CI and the tests use it), so a dashboard edited
by hand, or code changed without a rebuild, does not go unnoticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dashboards import JSON_DIR, PROVISIONING_DIR, provisioning
from dashboards.boards import BOARDS


def render_dashboard(name: str) -> str:
    return json.dumps(BOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def outputs(json_dir: Path = JSON_DIR, provisioning_dir: Path = PROVISIONING_DIR) -> dict[Path, str]:
    """Every file the build writes, with its content."""
    files = {json_dir / f"{name}.json": render_dashboard(name) for name in BOARDS}
    files |= {provisioning_dir / rel: provisioning.render(rel) for rel in provisioning.FILES}
    return files


@dataclass(frozen=True, slots=True)
class BuildResult:
    written: list[Path]
    unchanged: list[Path]
    stale: list[Path]  # differ from the build (only reported with check=True)


def build(json_dir: Path = JSON_DIR, provisioning_dir: Path = PROVISIONING_DIR,
          check: bool = False) -> BuildResult:
    written, unchanged, stale = [], [], []
    for path, content in outputs(json_dir, provisioning_dir).items():
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
