"""``civicair archive build`` on a real InfluxDB fed by the real ingest: the files hold exactly
what the API serves, every reader opens them with the right types, the data package
validates, and late readings rebuild their day only."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from api.app import create_app
from archive import schema
from archive.command import build
from civicair.influx import Influx
from tests.archive.conftest import (
    DAY,
    DAY1,
    DAY2,
    T0,
    TODAY,
    day_readings,
    publish_meta,
    publish_readings,
    reading,
    settings_for,
)
from tests.conftest import wait_until
from tests.ingest.conftest import stored_count

FRICTIONLESS = [sys.executable, "-m", "frictionless"]
#: "Today" for days not final yet (a bridge's spool can still replay into them).
RECENT = date(2025, 1, 10)


def _ingest_days(influx: Influx, spawn_ingest, publisher) -> int:
    spawn_ingest()
    publish_meta(publisher)
    readings = day_readings(T0) + day_readings(T0 + DAY, count=4)
    publish_readings(publisher, readings)
    wait_until(lambda: stored_count(influx) == len(readings), timeout=60, message="every reading stored")
    return len(readings)


def _api_rows(client: TestClient, station: str, day) -> list[dict]:
    r = client.get(f"/v1/stations/{station}/measurements",
                   params={"interval": "raw", "from": day.isoformat(), "to": (day.toordinal() and
                           datetime.fromordinal(day.toordinal() + 1).date().isoformat()), "limit": 10000})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def _archive_rows(path: Path) -> list[dict]:
    """Rows of a Parquet file as the API spells them: ISO time, missing values left out."""
    out = []
    for row in pq.read_table(path).to_pylist():
        row["time"] = row["time"].strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append({k: v for k, v in row.items() if v is not None})
    return out


def _frictionless(package: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*FRICTIONLESS, "validate", str(package)], capture_output=True, text=True, timeout=300)


def test_archive_rows_equal_the_api_and_every_reader_gets_typed_columns(influxdb, influx, spawn_ingest, publisher,
                                                                       archive_dir):
    total = _ingest_days(influx, spawn_ingest, publisher)
    settings = settings_for(influxdb, archive_dir)
    report = build(settings, today=TODAY)
    assert report.built == [DAY1, DAY2]
    base = archive_dir / "v1"
    day1 = base / "readings/year=2025/month=01/2025-01-01.parquet"

    # Every value and every qc of every station-day equals /v1/stations/{id}/measurements?interval=raw.
    with TestClient(create_app(settings)) as client:
        for day in (DAY1, DAY2):
            rows = _archive_rows(base / f"readings/year=2025/month=01/{day.isoformat()}.parquet")
            for station in ("lab-1", "park-2"):
                api = _api_rows(client, station, day)
                mine = [r for r in rows if r["station"] == station]
                key = lambda r: (r["channel"], r["time"])  # noqa: E731 - the archive's order within a station
                assert mine == sorted(api, key=key)
                assert len(mine) > 0
    # Sorted by station, channel, time; flags survived (out of range, uncorrected SDS011).
    rows = pq.read_table(day1).to_pylist()
    assert [(r["station"], r["channel"], r["time"]) for r in rows] == sorted(
        (r["station"], r["channel"], r["time"]) for r in rows)
    assert any(r["qc"] & 1 for r in rows) and any(r["pm25_atm_max"] == 12.25 for r in rows)
    assert all(r["window"] == 60 for r in rows)
    assert {r["climate"] for r in rows if r["station"] == "park-2"} == {"bme280", None}  # column added last
    assert schema.NAMES[-1] == "climate"

    # pyarrow: the Hive dataset, typed.
    table = ds.dataset(base / "readings", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == total
    assert table.schema.field("time").type == pa.timestamp("ms", tz="UTC")  # Parquet has no [s] unit
    assert table.schema.field("pm25").type == pa.float64() and table.schema.field("qc").type == pa.int64()
    assert table.schema.field("synced").type == pa.bool_() and table.schema.field("year").type == pa.int32()
    # pandas, one line.
    frame = pd.read_parquet(base / "readings")
    assert len(frame) == total and str(frame["time"].dt.tz) == "UTC"
    assert frame["qc"].dtype == "int64" and frame["pm25_atm"].dtype == "float64"
    # duckdb, one line.
    con = duckdb.connect()
    types = dict(con.execute(f"DESCRIBE SELECT * FROM read_parquet('{base}/readings/**/*.parquet', "
                             "hive_partitioning=1)").fetchall()[i][:2] for i in range(len(schema.NAMES) + 2))
    assert types["time"] == "TIMESTAMP WITH TIME ZONE" and types["qc"] == "BIGINT" and types["pm25"] == "DOUBLE"
    assert types["station"] == "VARCHAR" and types["synced"] == "BOOLEAN"
    assert con.execute(f"SELECT count(*) FROM read_parquet('{base}/readings/**/*.parquet', "
                       "hive_partitioning=1) WHERE month = 1").fetchone() == (total,)

    # The CSV twin: the same rows, ISO 8601 times with Z, empty cells for missing values.
    csv_path = base / "readings-csv/year=2025/month=01/2025-01-01.csv.gz"
    text = gzip.decompress(csv_path.read_bytes()).decode()
    header, first = text.splitlines()[:2]
    assert header.split(",") == list(schema.NAMES)
    assert first.startswith("2025-01-01T00:01:00Z,")
    csv = pd.read_csv(csv_path, parse_dates=["time"])
    parquet = pd.read_parquet(day1)
    pd.testing.assert_series_equal(csv["pm25"], parquet["pm25"], check_dtype=False)
    assert csv["qc"].tolist() == parquet["qc"].tolist()
    assert (csv["time"].dt.tz_convert("UTC") == parquet["time"]).all()

    # stations.csv: published positions (rounded unless the host opted in).
    stations = pd.read_csv(base / "stations.csv")
    lab = stations.set_index("station").loc["lab-1"]
    assert (lab["lat"], lab["lon"]) == (52.091, 5.121)
    assert stations.set_index("station").loc["park-2", "lat"] == 52.1

    # The data package validates, and stops validating once a byte of a file changes.
    package = orjson.loads((base / "datapackage.json").read_bytes())
    assert package["licenses"][0]["name"] == "CC-BY-4.0" and package["contributors"][0]["title"]
    assert {r["path"] for r in package["resources"]} >= {"stations.csv", "readings/year=2025/month=01/2025-01-01.parquet"}
    done = _frictionless(base / "datapackage.json")
    assert done.returncode == 0, done.stdout + done.stderr
    data = bytearray(day1.read_bytes())
    data[len(data) // 2] ^= 0xFF
    day1.write_bytes(bytes(data))
    broken = _frictionless(base / "datapackage.json")
    assert broken.returncode == 1, broken.stdout
    assert "hash" in broken.stdout


def test_late_readings_rebuild_their_day_and_an_unchanged_day_is_not_rewritten(influxdb, influx, spawn_ingest,
                                                                                publisher, archive_dir):
    total = _ingest_days(influx, spawn_ingest, publisher)  # days that late readings can still reach:
    settings = settings_for(influxdb, archive_dir)
    build(settings, today=RECENT)
    base = archive_dir / "v1"
    day1 = base / "readings/year=2025/month=01/2025-01-01.parquet"
    day2 = base / "readings/year=2025/month=01/2025-01-02.parquet"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in base.rglob("*.*") if "readings" in str(p)}
    hashes = {r["name"]: r["hash"] for r in orjson.loads((base / "datapackage.json").read_bytes())["resources"]}

    # Nothing changed: nothing is rewritten.
    assert build(settings, today=RECENT).built == []
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before

    # A bridge replays its spool: two readings of day 1 arrive late.
    late = [reading("lab-1", T0 + 7200, 500), reading("late-3", T0 + 7260, 0, sensor="sds011")]
    publish_readings(publisher, late)
    wait_until(lambda: stored_count(influx) == total + 2, timeout=60, message="late readings stored")
    report = build(settings, today=RECENT)
    assert report.built == [DAY1] and report.unchanged == [DAY2]  # day 2 checked (not final), same
    assert {(r["station"], r["seq"]) for r in pq.read_table(day1).to_pylist()} >= {("lab-1", 500), ("late-3", 0)}
    after = {r["name"]: r for r in orjson.loads((base / "datapackage.json").read_bytes())["resources"]}
    assert after["readings-2025-01-01-parquet"]["hash"] != hashes["readings-2025-01-01-parquet"]
    assert after["readings-2025-01-01-csv"]["rows"] == len(pq.read_table(day1))
    assert after["readings-2025-01-02-parquet"]["hash"] == hashes["readings-2025-01-02-parquet"]
    assert (day2.read_bytes(), day2.stat().st_mtime_ns) == before[day2]
    assert "late-3" in (base / "stations.csv").read_text()

    # --force reads every day again, and still leaves byte-identical files alone.
    mtime = day1.stat().st_mtime_ns
    report = build(settings, days=[DAY1, DAY2], force=True, today=RECENT)
    assert report.built == [] and report.unchanged == [DAY1, DAY2]
    assert day1.stat().st_mtime_ns == mtime and (day2.read_bytes(), day2.stat().st_mtime_ns) == before[day2]


def test_cli_builds_through_the_command_line_as_a_user_runs_it(influxdb, influx, tmp_path):
    from tests.api.conftest import pm_line, write

    write(influx, [pm_line("cli-1", T0 + 60 * i, pm25=5.0 + i, pm25_atm=6.0, pm25_method="none") for i in range(3)])
    env = {**os.environ, "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": "airquality",
           "CIVICAIR_ARCHIVE_DIR": str(tmp_path / "archive")}
    done = subprocess.run([sys.executable, "-m", "civicair", "archive", "build"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 day(s) written (2025-01-01)" in done.stdout
    assert (tmp_path / "archive/v1/readings/year=2025/month=01/2025-01-01.parquet").is_file()
    today = datetime.now(UTC).date().isoformat()
    assert not list((tmp_path / "archive").rglob(f"{today}.*"))  # the default builds complete days only


def test_stations_of_always_on_bridges_validate(influxdb, influx, archive_dir):
    """A bridge's meta says ``duty_period: 0`` when always on (firmware_bridge/config.py): that is no
    duty period, an empty cell, so ``frictionless validate`` passes on a real network's archive."""
    from civicair.schema.storage import meta_to_line
    from tests.api.conftest import pm_line, write

    bridge_meta = {"name": "Lab 1", "lat": 52.0907, "lon": 5.1214, "sensors": {"a": "pms5003"}, "window": 60,
                   "software": "civicair 0.1.0"}
    write(influx, [meta_to_line("lab-1", bridge_meta | {"duty_period": 0}, T0).decode().strip(),
                   meta_to_line("duty-2", bridge_meta | {"duty_period": 300}, T0).decode().strip()]
          + [pm_line(s, T0 + 60, pm25=5.0, pm25_atm=6.0, pm25_method="none") for s in ("lab-1", "duty-2")])
    build(settings_for(influxdb, archive_dir), today=TODAY)
    base = archive_dir / "v1"
    stations = pd.read_csv(base / "stations.csv").set_index("station")
    assert pd.isna(stations.loc["lab-1", "duty_period"]) and stations.loc["duty-2", "duty_period"] == 300
    done = _frictionless(base / "datapackage.json")
    assert done.returncode == 0, done.stdout + done.stderr
