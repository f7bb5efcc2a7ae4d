"""The one-line reads of docs/archive.md and the README run, as written, on a built archive."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa

from archive.command import build
from tests.api.conftest import pm_line, write
from tests.archive.conftest import settings_for

REPO = Path(__file__).resolve().parents[2]
#: The day the documented paths name: 2026-11-29T00:00:00Z.
DOC_DAY = 1_795_910_400


def _reads(path: Path) -> list[str]:
    text = path.read_text()
    block = re.search(r"<!-- reads:begin -->\n```python\n(.*?)```\n<!-- reads:end -->", text, re.S)
    assert block, f"{path.name} has no reads block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_shows_the_same_one_line_reads_as_the_archive_doc():
    assert _reads(REPO / "README.md") == _reads(REPO / "docs" / "archive.md")


def test_documented_one_line_reads_work_on_a_built_archive(influxdb, influx, tmp_path, monkeypatch):
    write(influx, [pm_line(s, DOC_DAY + 60 * i, pm25=5.0 + i, pm25_atm=6.0, pm25_method="none",
                           qc=(0, 256, 1)[i % 3]) for s in ("doc-1", "doc-2") for i in range(30)])
    build(settings_for(influxdb, tmp_path / "archive"), days=[date(2026, 11, 29)], today=date(2027, 1, 1))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for line in _reads(REPO / "docs" / "archive.md"):
        exec(line, scope)  # noqa: S102 - the documented line, as a user pastes it
    assert len(scope["day"]) == 60 and str(scope["day"]["time"].dt.tz) == "UTC"
    assert scope["day"]["qc"].dtype == "int64"
    assert len(scope["everything"]) == 60 and set(scope["everything"]["month"].astype(int)) == {11}
    assert scope["table"].schema.field("pm25").type == pa.float64() and scope["table"].num_rows == 60
    clean = [5.0 + i for i in range(30) if i % 3 != 2]  # qc 1 is a flag, qc 256 only informational
    assert sorted(scope["rel"].fetchall()) == [("doc-1", sum(clean) / len(clean)), ("doc-2", sum(clean) / len(clean))]
    assert isinstance(scope["csv"], pd.DataFrame) and len(scope["csv"]) == 60

    done = subprocess.run([sys.executable, "-m", "frictionless", "validate", "archive/v1/datapackage.json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
