"""The packages type-check: mypy (with the pydantic plugin, see pyproject.toml) finds nothing.

Cheap (about 10 s) and catches the None that slips through a refactor before a user does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["civicair", "firmware_bridge", "ingest", "api", "dashboards", "archive", "rollup"]


def test_mypy_finds_no_errors(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"), *PACKAGES],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
