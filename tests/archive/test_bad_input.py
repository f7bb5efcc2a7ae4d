"""Bad input and a failing database: a clear message, and no file where a complete one is expected."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from archive.build import ArchiveError
from archive.command import build
from civicair.influx import InfluxUnavailable
from tests.api.conftest import pm_line, write
from tests.archive.conftest import DAY, DAY1, DAY2, T0, TODAY, settings_for


def _seed(influx, days: int = 2) -> None:
    write(influx, [pm_line("bad-1", T0 + d * DAY + 60 * i, pm25=5.0 + i, pm25_atm=6.0, pm25_method="none")
                   for d in range(days) for i in range(50)])


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _cli(influxdb, archive_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": "airquality",
           "CIVICAIR_ARCHIVE_DIR": str(archive_dir)}
    return subprocess.run([sys.executable, "-m", "civicair", "archive", "build", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_unknown_future_and_malformed_days_are_refused_with_a_reason(influxdb, influx, archive_dir):
    _seed(influx)
    settings = settings_for(influxdb, archive_dir)
    with pytest.raises(ArchiveError, match="no readings stored for 2024-06-01"):
        build(settings, days=[date(2024, 6, 1)], today=TODAY)
    with pytest.raises(ArchiveError, match="in the future"):
        build(settings, days=[TODAY + timedelta(days=1)], today=TODAY)
    with pytest.raises(ArchiveError, match="before --from"):
        build(settings, start=DAY2, end=DAY1, today=TODAY)
    assert not list(archive_dir.rglob("*.parquet"))

    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    for args, message in ((["--day", tomorrow], "is in the future"),
                          (["--day", "2024-06-01"], "no readings stored for 2024-06-01"),
                          (["--day", "2025-02-30"], "not a day: '2025-02-30'"),
                          (["--to", "2025-01-02"], "--to needs --from")):
        done = _cli(influxdb, archive_dir, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not list(archive_dir.rglob("*.parquet"))


def test_a_range_builds_its_days_and_today_is_built_partial(influxdb, influx, archive_dir):
    _seed(influx)
    today = datetime.now(UTC).date()
    now = int(datetime.now(UTC).timestamp()) // 60 * 60
    write(influx, [pm_line("bad-1", now - 60, pm25=1.0, pm25_atm=1.0, pm25_method="none")])
    settings = settings_for(influxdb, archive_dir)
    report = build(settings, start=DAY1, end=DAY2 + timedelta(days=3))
    assert report.built == [DAY1, DAY2] and len(report.empty) == 3
    report = build(settings, days=[today])
    assert report.built == [today]
    from archive.build import load_records

    records, _ = load_records(archive_dir / "v1" / "datapackage.json")
    assert records[today].complete is False and records[DAY1].complete is True and records[DAY1].rows == 50


def test_database_down_mid_build_fails_clearly_and_leaves_no_partial_file(influxdb, influx, archive_dir):
    _seed(influx, days=2)
    settings = settings_for(influxdb, archive_dir)

    def stop_database(day: date, rows: int) -> None:
        if day == DAY1:
            influxdb.stop()  # InfluxDB goes away while the first day streams

    with pytest.raises(InfluxUnavailable, match="unreachable"):
        build(settings, start=DAY1, end=DAY2, today=TODAY, progress=stop_database)
    files = _files(archive_dir)
    assert not [f for f in files if ".tmp-" in f], files  # no temporary file left
    assert "readings/year=2025/month=01/2025-01-02.parquet" not in " ".join(files)
    # What was written is complete: every file the package lists exists with its size and hash.
    package = archive_dir / "v1" / "datapackage.json"
    if package.exists():
        from archive.build import load_records, sha256_of

        records, _ = load_records(package)
        for record in records.values():
            for f in record.files.values():
                assert sha256_of(archive_dir / "v1" / f["path"]) == f["hash"]
    assert all(f.endswith((".json", ".csv")) or "2025-01-01" in f for f in files), files

    done = _cli(influxdb, archive_dir, "--day", "2025-01-02")
    assert done.returncode == 1 and "InfluxDB unreachable" in done.stderr and "no partial file" in done.stderr


def test_temporary_files_of_a_killed_build_are_removed_by_the_next(influxdb, influx, archive_dir):
    _seed(influx, days=1)
    folder = archive_dir / "v1" / "readings" / "year=2025" / "month=01"
    folder.mkdir(parents=True)
    stale = folder / ".2025-01-01.parquet.tmp-4194305"  # above Linux's pid_max: its process is gone
    stale.write_bytes(b"half a file")
    build(settings_for(influxdb, archive_dir), days=[DAY1], today=TODAY)
    assert not stale.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["2025-01-01.parquet"]


def test_a_build_with_nothing_to_do_says_how_to_build_today(influxdb, influx, archive_dir):
    """A new user's database holds only today's readings: the default build writes nothing and says why."""
    now = int(datetime.now(UTC).timestamp()) // 60 * 60
    write(influx, [pm_line("new-1", now, pm25=1.0, pm25_atm=1.0, pm25_method="none")])
    done = _cli(influxdb, archive_dir)
    assert done.returncode == 0, done.stderr
    assert "0 day(s) written" in done.stdout and "--day YYYY-MM-DD" in done.stdout, done.stdout
    assert not list(archive_dir.rglob("*.parquet"))
