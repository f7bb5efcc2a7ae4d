"""Rollup tests: the real ingest (``python -m ingest``), broker and database; the worker
in the test process (``Worker.cycle``) or as ``python -m rollup run``."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from typing import Any

import orjson

from civicair.influx import Influx, series
from civicair.schema import contract, qc
from rollup.metrics import parse
from tests.ingest.conftest import ingest_env, publisher, reading, spawn_ingest  # noqa: F401 (fixtures)

#: 2025-01-06T00:00:00Z
T0 = 1_736_121_600
HOUR = 3600
DAY = 86400
CLEAN = '"qc" & 9223372036854775551 = 0'


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def message(station: str, seq: int, ts: int) -> tuple[str, bytes]:
    return contract.readings_topic(station), orjson.dumps(reading(station, seq) | {"ts": ts})


def metrics_of(port: int) -> dict[str, float]:
    """The worker's /metrics on ``port`` ({} while it is not listening yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return parse(r.read().decode())
    except OSError:
        return {}


def stored_total(influx: Influx) -> int:
    (result,) = influx.query('SELECT count("n") FROM "pm"')
    found = series(result)
    return int(found[0]["values"][0][1]) if found else 0


def raw_aggregates(influx: Influx, interval: str, clean: bool) -> dict[tuple[str, int], dict[str, Any]]:
    """Mean, min, max and count of pm25, pm25_atm and rh per station and interval, as
    InfluxQL computes them from raw (written out here, not built by civicair.influxql)."""
    cols = ", ".join(f'{f}("{p}") AS "{p}_{f}"' for p in ("pm25", "pm25_atm", "rh")
                     for f in ("mean", "min", "max", "count"))
    where = f" WHERE time >= 0s AND {CLEAN}" if clean else " WHERE time >= 0s"
    (result,) = influx.query(f'SELECT {cols} FROM "pm"{where} AND time < now() + 1d '
                             f'GROUP BY time({interval}), "station" fill(none)')
    return {(s["tags"]["station"], int(row[0])): dict(zip(s["columns"][1:], row[1:], strict=True))
            for s in series(result) for row in s["values"]}


def rollup_points(influx: Influx, measurement: str) -> dict[tuple[str, int], dict[str, Any]]:
    (result,) = influx.query(f'SELECT * FROM "{measurement}" GROUP BY "station"')
    return {(s["tags"]["station"], int(row[0])): {k: v for k, v in zip(s["columns"][1:], row[1:], strict=True)
                                                  if v is not None}
            for s in series(result) for row in s["values"]}


def raw_windows(influx: Influx, interval: str) -> dict[tuple[str, int], dict[str, int]]:
    """Per station and interval, ``window_<channel>``: the raw sum("window") of every reading
    of the channel (the coverage panels' raw query), nonzero only."""
    (result,) = influx.query('SELECT sum("window") FROM "pm" WHERE time >= 0s AND time < now() + 1d '
                             f'GROUP BY time({interval}), "station", "channel" fill(none)')
    out: dict[tuple[str, int], dict[str, int]] = {}
    for s in series(result):
        for t, total in s["values"]:
            if total:
                out.setdefault((s["tags"]["station"], int(t)), {})[f"window_{s['tags']['channel']}"] = total
    return out


def raw_flags(influx: Influx, interval: str) -> dict[tuple[str, int], dict[str, int]]:
    """Per station and interval, readings carrying each flag (nonzero only) and their OR."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    for flag in qc.Flag:
        (result,) = influx.query(f'SELECT count("n") FROM "pm" WHERE "qc" & {int(flag)} != 0 AND time >= 0s '
                                 f'AND time < now() + 1d GROUP BY time({interval}), "station" fill(none)')
        for s in series(result):
            for t, n in s["values"]:
                point = out.setdefault((s["tags"]["station"], int(t)), {"qc_or": 0})
                point[f"flag_{(flag.name or '').lower()}"] = n
                point["qc_or"] |= int(flag)
    return out


def assert_rollups_equal_raw(influx: Influx) -> int:
    """Every station and hour (and UTC day): the rollup's statistics (and window sums per
    channel) are the raw ones. Returns
    how many station-intervals were compared."""
    compared = 0
    raw_flags_by_interval = {interval: raw_flags(influx, interval) for interval in ("1h", "1d")}
    raw_windows_by_interval = {interval: raw_windows(influx, interval) for interval in ("1h", "1d")}
    for interval, measurement in (("1h", "pm_1h"), ("1d", "pm_1d")):
        points = rollup_points(influx, measurement)
        every = raw_aggregates(influx, interval, clean=False)
        clean = raw_aggregates(influx, interval, clean=True)
        assert set(points) == set(every), (interval, set(points) ^ set(every))
        for key, raw in every.items():
            point = points[key]
            assert {k: v for k, v in raw.items() if v is not None} == \
                {k.removesuffix("_all"): v for k, v in point.items() if k.removesuffix("_all") in raw
                 and k.endswith("_all")}, (interval, key)
            want = {k: v for k, v in clean.get(key, {}).items() if v is not None}
            assert want == {k: v for k, v in point.items() if k in raw and not (k.endswith("_count") and v == 0)}, \
                (interval, key)
            flags = raw_flags_by_interval[interval].get(key, {"qc_or": 0})
            assert flags == {k: v for k, v in point.items() if k.startswith("flag_") or k == "qc_or"}, \
                (interval, key)
            windows = raw_windows_by_interval[interval].get(key, {})
            assert windows, (interval, key)  # every reading has a window
            assert windows == {k: v for k, v in point.items() if k.startswith("window_")}, (interval, key)
            compared += 1
    return compared
