"""The examples in docs/examples run, against the API on the real InfluxDB."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from tests.api.conftest import T0, pm_line, write

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_download_pages_through_every_reading_once_into_a_csv(client, influx, tmp_path, capsys):
    stations = ["ex-1", "ex-2"]
    write(influx, [pm_line(s, T0 + 60 * i, pm25=5.0 + i % 7, pm25_atm=4.0 + i % 5)
                   for s in stations for i in range(250)])
    download = load("download")
    out = tmp_path / "readings.csv"
    count = download.download(client, ",".join(stations), "2026-01-01", "2026-01-02", str(out), page_size=37)
    assert count == 500
    rows = list(csv.DictReader(out.open()))
    assert len({(r["station"], r["time"]) for r in rows}) == 500
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    assert {float(r["pm25"]) for r in rows} == {5.0 + k for k in range(7)}
    assert "500 readings so far" in capsys.readouterr().err


def test_download_without_arguments_prints_its_usage_and_a_refused_request_the_apis_message(tmp_path, capsys):
    download = load("download")
    assert download.main([]) == 2
    assert "usage: python docs/examples/download.py API_URL STATIONS FROM TO OUT.csv" in capsys.readouterr().err
    # Nothing listens on port 1: a clear line, no traceback.
    assert download.main(["http://127.0.0.1:1", "ex-1", "2026-01-01", "2026-01-02", str(tmp_path / "x.csv")]) == 1
    assert "cannot reach http://127.0.0.1:1" in capsys.readouterr().err
