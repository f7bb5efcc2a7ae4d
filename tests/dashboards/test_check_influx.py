"""`civicair dashboards check` against a real InfluxDB with seeded data.

Every panel query and variable query of the committed dashboards runs, with Grafana's
macros expanded as Grafana expands them, and must return rows: the raw and the rollup
forms of a panel each over a range they are on for. A few panels are also checked for
the numbers they show.
"""

from __future__ import annotations

import statistics
import time

from civicair.cli import main
from civicair.schema import aqi, nowcast, storage
from dashboards.boards import BOARDS
from dashboards.check import FAIL, NO_ROWS, PASS, check, iter_panels
from dashboards.macros import Context, TimeRange, calculate_interval, expand
from tests.conftest import DATABASE
from tests.dashboards.conftest import (
    HOUR,
    OFFLINE,
    ONLINE,
    ROLLUP_RP,
    STATIONS,
    expected_nowcast,
    hourly_pm25,
)


def _targets() -> int:
    n = 0
    for build in BOARDS.values():
        board = build()
        n += sum(1 for v in board["templating"]["list"] if v["type"] == "query")
        n += sum(len(p.get("targets", [])) for p in iter_panels(board))
    return n


def test_every_panel_and_variable_query_returns_rows(seeded):
    report = check(seeded)
    not_passing = [f for f in report.findings if f.status != PASS]
    assert not_passing == [], "\n".join(report.lines())
    assert report.count(PASS) == _targets()


def test_check_command_passes_with_required_rows(seeded, influxdb, capsys):
    code = main(["dashboards", "check", "--influx-url", influxdb.url, "--db", DATABASE, "--require-rows"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{_targets()} passed, 0 without rows, 0 failed" in out


def test_an_empty_database_gives_no_rows_not_failures(influx, influxdb, capsys):
    report = check(influx)
    assert report.count(FAIL) == 0
    assert report.count(NO_ROWS) > 0
    args = ["dashboards", "check", "--influx-url", influxdb.url, "--db", DATABASE]
    assert main(args) == 0
    assert main([*args, "--require-rows"]) == 1


def test_a_query_influxdb_refuses_fails_the_check(seeded, influxdb, tmp_path, capsys):
    import json
    import shutil

    from dashboards import JSON_DIR, PROVISIONING_DIR

    shutil.copytree(JSON_DIR, tmp_path / "json")
    path = tmp_path / "json" / "network-health.json"
    board = json.loads(path.read_text())
    board["panels"][0]["targets"][0]["query"] = 'SELECT mean("pm25") FROM "pm" WHERE $timeFilter GROUP BY'
    path.write_text(json.dumps(board))
    code = main(["dashboards", "check", "--influx-url", influxdb.url, "--db", DATABASE,
                 "--json-dir", str(tmp_path / "json"), "--provisioning-dir", str(PROVISIONING_DIR)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL     network-health › Stations online [A]" in out
    assert "query: SELECT" in out and "time >= " in out  # the expanded query is shown


def test_a_query_variable_without_a_query_is_reported_once_and_does_not_crash_the_check(seeded, tmp_path):
    import json
    import shutil

    from dashboards import JSON_DIR, PROVISIONING_DIR

    shutil.copytree(JSON_DIR, tmp_path / "json")
    path = tmp_path / "json" / "station.json"
    board = json.loads(path.read_text())
    variable = next(v for v in board["templating"]["list"] if v.get("type") == "query")
    variable["query"] = None
    path.write_text(json.dumps(board))
    report = check(seeded, json_dir=tmp_path / "json", provisioning_dir=PROVISIONING_DIR)
    failed = [f for f in report.findings if f.status == FAIL]
    assert [(f.where, f.detail) for f in failed] == [(f"variable ${variable['name']}",
                                                       "query variable without a query")]


def test_station_variable_lists_every_station_and_can_be_overridden(seeded):
    report = check(seeded, overrides={"station": "depot-4"})
    [var] = [f for f in report.findings if f.where == "variable $station"]
    assert var.detail == f"{len(STATIONS)} rows"
    now_panel = next(f for f in report.findings if f.where.startswith("PM2.5, latest minute"))
    assert "'depot-4'" in now_panel.query and now_panel.status == PASS


def _run_panel(influx, board_name: str, title: str, ref: str = "A", **variables):
    from dashboards.macros import Variable

    board = BOARDS[board_name]()
    panel = next(p for p in iter_panels(board) if p["title"] == title)
    target = next(t for t in panel["targets"] if t["refId"] == ref)
    now = int(time.time() * 1000)
    rng = TimeRange.relative(board["time"]["from"], now_ms=now)
    variables = {"rollup_rp": "", **variables}  # the committed default: the default policy
    ctx = Context(rng, calculate_interval(rng, 1000, 60_000),
                  {k: Variable(k, (v,)) for k, v in variables.items()})
    return influx.query(expand(target["query"], ctx))


def _single_value(results) -> float:
    [series] = results[0]["series"]
    [[_, value]] = series["values"]
    return value


def test_online_and_offline_counts(seeded):
    assert _single_value(_run_panel(seeded, "network-health", "Stations online")) == len(ONLINE)
    assert _single_value(_run_panel(seeded, "network-health", "Stations offline")) == len(OFFLINE)
    assert _single_value(_run_panel(seeded, "network-health", "Stations ever seen")) == len(STATIONS)


def test_city_wide_median_is_the_median_of_online_stations_latest_values(seeded):
    latest = {}
    for s in (r["tags"]["station"] for r in seeded.query(
            'SELECT last("pm25") FROM "pm" WHERE time > now() - 15m GROUP BY "station"')[0]["series"]):
        latest[s] = seeded.query(f'SELECT last("pm25") FROM "pm" WHERE "station" = \'{s}\'')[0]["series"][0][
            "values"][0][1]
    assert sorted(latest) == sorted(ONLINE)
    got = _single_value(_run_panel(seeded, "overview", "City-wide air quality now (NowCast)", "B"))
    assert abs(got - statistics.median(latest.values())) < 1e-9


def test_station_table_status_query_leaves_offline_stations_out(seeded):
    results = _run_panel(seeded, "overview", "Stations", "B")
    assert sorted(s["tags"]["station"] for s in results[0]["series"]) == sorted(ONLINE)


def test_flag_rate_is_the_share_of_readings_with_that_bit(seeded):
    """Bit 1 << k is set on every (k + 3)-th reading: SPIKE (k = 2) on one in five."""
    board = BOARDS["network-health"]()
    panel = next(p for p in board["panels"] if p["title"].startswith("Share of readings flagged"))
    spike = next(t for t in panel["targets"] if t["alias"] == "spike")
    # Whole hours, one bucket each: every bucket holds 60 consecutive readings of every
    # series, so exactly 12 in 60 carry the bit, whatever the time of day the test runs.
    hour = int(time.time()) // 3600 * 3_600_000
    rng = TimeRange(hour - 45 * 3_600_000, hour - 3 * 3_600_000 - 1000)
    results = seeded.query(expand(spike["query"], Context(rng, 3_600_000, {})))
    values = [v[1] for v in results[0]["series"][0]["values"] if v[1] is not None]
    assert len(values) == 42
    assert all(abs(v - 20.0) < 1e-9 for v in values), values


def _run_over(influx, board_name: str, title: str, ref: str, hours: int, **variables):
    from dashboards.macros import Variable

    panel = next(p for p in iter_panels(BOARDS[board_name]()) if p["title"] == title)
    target = next(t for t in panel["targets"] if t["refId"] == ref)
    now = int(time.time() * 1000)
    rng = TimeRange(now - hours * 3_600_000, now)
    ctx = Context(rng, calculate_interval(rng, 1000, 60_000),
                  {k: Variable(k, (v,)) for k, v in {"rollup_rp": "", **variables}.items()})
    return influx.query(expand(target["query"], ctx))


def test_coverage_of_a_station_reporting_every_minute_is_full_from_raw_and_from_the_rollups(seeded):
    """Raw up to 2 days (the seeded raw days), then pm_1h's window_a: a full station stays near
    100 % across the switch (the rollups miss only the range's first and current partial hours)."""
    [raw] = _run_over(seeded, "station", "Data coverage", "A", 24, station="park-2")[0]["series"]
    assert abs(raw["values"][0][1] - 100) < 1.0
    assert "series" not in _run_over(seeded, "station", "Data coverage", "B", 24, station="park-2")[0]
    # The board's own 7-day range: raw is off, the hourly rollup on.
    assert "series" not in _run_panel(seeded, "station", "Data coverage", "A", station="park-2")[0]
    [hourly] = _run_panel(seeded, "station", "Data coverage", "B", station="park-2")[0]["series"]
    row = dict(zip(hourly["columns"], hourly["values"][0], strict=True))
    assert 100 - 100 * 2 / (7 * 24) - 0.01 <= row["a"] <= 100, row
    assert row["b"] is None  # one sensor: its "b" column is empty, the row is there


def test_coverage_per_station_keeps_a_bar_per_sensor_over_the_rollups(seeded):
    """The network bars over 30 days (hourly rollup): one row per station, columns a and b;
    lab-1 has two sensors, the others one (their b is empty)."""
    results = _run_over(seeded, "network-health", "Coverage per station", "B", 30 * 24)
    got = {s["tags"]["station"]: dict(zip(s["columns"], s["values"][0], strict=True))
           for s in results[0]["series"]}
    assert sorted(got) == sorted(s.id for s in STATIONS)
    assert got["lab-1"]["a"] == got["lab-1"]["b"] > 99
    assert got["park-2"]["a"] > 99 and got["park-2"]["b"] is None
    # Over a year: the daily rollup (90 seeded days of 365).
    yearly = _run_over(seeded, "network-health", "Coverage per station", "C", 365 * 24)
    lab = next(s for s in yearly[0]["series"] if s["tags"]["station"] == "lab-1")
    assert abs(lab["values"][0][1] - 100 * 90 / 365) < 1.0


def test_coverage_over_time_from_the_hourly_rollup_is_full_for_every_hour(seeded):
    results = _run_panel(seeded, "station", "Data coverage over time", "B", station="lab-1")
    [series] = results[0]["series"]
    cols = series["columns"]
    full = [dict(zip(cols, v, strict=True)) for v in series["values"] if v[1] is not None]
    assert len(full) >= 7 * 24 - 2
    assert all(row["a"] == row["b"] == 100 for row in full)


def test_the_map_shows_each_stations_current_nowcast_and_its_aqi(seeded):
    """Issue 12: the markers take the NowCast (pm_nowcast, the point of the last whole hour).
    depot-4 stopped an hour ago: its last hour is empty, 2 of its last 3 are not, so it keeps
    a NowCast (of its other hours). A station silent for 2 of the last 3 hours has none, as
    /v1/latest says, though the worker wrote one for it an hour or two ago."""
    now_s = int(time.time())
    end = now_s // HOUR * HOUR
    gone = [storage.nowcast_line("gone-9", end - back * HOUR, nowcast.nowcast([20.0] * 12)).decode()
            for back in (2, 3)]  # its last NowCast: 2 h ago (EPA's rule ended it since)
    seeded.write("".join(gone).encode())
    results = _run_panel(seeded, "overview", "Air quality now (NowCast) at each station")
    got = {s["tags"]["station"]: dict(zip(s["columns"], s["values"][0], strict=True))
           for s in results[0]["series"]}
    assert sorted(got) == sorted(s.id for s in STATIONS)  # not gone-9
    for s in STATIONS:
        cast = expected_nowcast(s, now_s)
        assert cast is not None
        assert got[s.id]["NowCast"] == cast.value
        assert got[s.id]["AQI"] == aqi.us_aqi(cast.value).value


def test_city_wide_nowcast_is_the_median_of_the_stations_nowcasts(seeded):
    now_s = int(time.time())
    results = _run_panel(seeded, "overview", "City-wide air quality now (NowCast)")
    [series] = results[0]["series"]
    row = dict(zip(series["columns"], series["values"][0], strict=True))
    casts = [cast.value for s in STATIONS if (cast := expected_nowcast(s, now_s)) is not None]
    assert len(casts) == len(STATIONS)
    assert abs(row["NowCast (µg/m³)"] - statistics.median(casts)) < 1e-9
    assert row["AQI"] == statistics.median(aqi.us_aqi(c).value for c in casts)


def test_a_week_of_one_station_is_drawn_from_its_hourly_rollup(seeded):
    """Issue 14: over 7 days the station board's PM2.5 reads pm_1h, one point per hour."""
    results = _run_panel(seeded, "station", "PM2.5: corrected and raw", "B", station="park-2")
    [series] = results[0]["series"]
    assert series["name"] == storage.PM_1H
    values = {t: v for t, v in series["values"] if v is not None}  # epoch s
    assert len(values) >= 7 * 24 - 2
    park = next(s for s in STATIONS if s.id == "park-2")
    assert all(abs(v - hourly_pm25(park, t)) < 1e-9 for t, v in values.items())
    # The raw form of the same series is switched off over 7 days: InfluxDB folds it away.
    assert "series" not in _run_panel(seeded, "station", "PM2.5: corrected and raw", "A", station="park-2")[0]


def test_a_switch_influxdb_does_not_honour_fails_the_check(seeded, tmp_path):
    """A query said to be off (by its $__range_s comparison) that still returns rows is a failure:
    the check proves the switch against the InfluxDB it runs on."""
    import json
    import shutil

    from dashboards import JSON_DIR, PROVISIONING_DIR

    shutil.copytree(JSON_DIR, tmp_path / "json")
    path = tmp_path / "json" / "station.json"
    board = json.loads(path.read_text())
    panel = next(p for p in board["panels"] if p["title"] == "PM10")
    raw = panel["targets"][0]
    raw["query"] = raw["query"].replace("$__range_s <= 172800", "$__range_s <= 172800 OR 1 = 1")
    path.write_text(json.dumps(board))
    report = check(seeded, json_dir=tmp_path / "json", provisioning_dir=PROVISIONING_DIR)
    [failed] = [f for f in report.findings if f.status == FAIL]
    assert failed.where == "PM10 [A]" and "does not fold the switch" in failed.detail


# -- the rollups in a retention policy of their own (CIVICAIR_ROLLUP_RP) ------------------------

ROLLUP_MEASUREMENTS = (storage.PM_1H, storage.PM_1D, storage.PM_NOWCAST)


def _reads_rollups(query: str) -> bool:
    return any(f'"{m}"' in query for m in ROLLUP_MEASUREMENTS)


def test_with_the_rollups_in_a_named_policy_every_query_returns_rows(seeded_rp):
    """The rollups and NowCasts live in "forever" (as `civicair rollup init` puts them beside a
    raw retention): with $rollup_rp set, every panel query returns rows; left empty (the
    default policy), exactly the rollup and NowCast queries find nothing."""
    report = check(seeded_rp, overrides={"rollup_rp": ROLLUP_RP})
    not_passing = [f for f in report.findings if f.status != PASS]
    assert not_passing == [], "\n".join(report.lines())
    assert report.count(PASS) == _targets()
    rollup_findings = [f for f in report.findings if _reads_rollups(f.query)]
    assert all(f'FROM "{ROLLUP_RP}"."' in f.query for f in rollup_findings)
    assert {m for f in rollup_findings for m in ROLLUP_MEASUREMENTS if f'"{m}"' in f.query} == set(
        ROLLUP_MEASUREMENTS)

    default = check(seeded_rp)
    empty = {f.where for f in default.findings if f.status == NO_ROWS}
    assert empty == {f.where for f in rollup_findings}
    assert default.count(FAIL) == 0


def test_check_command_takes_the_policy_from_an_option_or_the_environment(seeded_rp, influxdb, monkeypatch,
                                                                         capsys):
    args = ["dashboards", "check", "--influx-url", influxdb.url, "--db", DATABASE, "--require-rows"]
    assert main([*args, "--rollup-rp", ROLLUP_RP]) == 0
    assert f"{_targets()} passed, 0 without rows, 0 failed" in capsys.readouterr().out
    monkeypatch.setenv("CIVICAIR_ROLLUP_RP", ROLLUP_RP)
    assert main(args) == 0
    assert f"{_targets()} passed, 0 without rows, 0 failed" in capsys.readouterr().out
    assert main([*args, "--var", "rollup_rp="]) == 1  # --var wins: the default policy holds no rollups
    assert main([*args, "--rollup-rp", "no such; policy"]) == 2
    assert "letters, digits" in capsys.readouterr().err


# -- the real rollup worker over readings written as line protocol -------------------------------


def test_the_rollup_workers_nowcasts_fill_every_nowcast_panel(influx, influxdb):
    """Readings of two stations, one in smoke far beyond the index, written as line protocol; the
    real rollup worker (rollup/worker.py, rollup/nowcast.py) writes pm_1h and pm_nowcast into a
    policy of their own; then every NowCast panel query finds rows, and the smoky station's AQI is
    501 (storage.NOWCAST_BEYOND_AQI), which those panels show as "Beyond the AQI"."""
    from rollup.settings import RollupSettings
    from rollup.worker import Worker

    influx.query(f'CREATE RETENTION POLICY "{ROLLUP_RP}" ON "{DATABASE}" DURATION INF REPLICATION 1',
                 method="POST")
    now = int(time.time()) // 60 * 60
    levels = {"clean-8": 12.0, "smoke-9": 400.0}
    lines = []
    for station, pm25 in levels.items():
        for i in range(6 * 60):  # a reading a minute for 6 hours
            lines.append(f"pm,station={station},sensor=pms5003,channel=a pm25={pm25},pm25_atm={pm25 / 0.8:.2f},"
                         f"pm10_atm={pm25:.2f},rh=50.0,temp=15.0,qc=0i,n=26i,window=60i {now - i * 60}")
        lines.append(f'station,station={station} name="{station}",lat=52.09,lon=5.12 {now - 6 * 3600}')
    influx.write(("\n".join(lines) + "\n").encode())
    Worker(RollupSettings(influx_url=influxdb.url, influx_db=DATABASE, rollup_rp=ROLLUP_RP,
                          rollup_metrics_port=0), influx).cycle()

    for station in levels:
        report = check(influx, overrides={"rollup_rp": ROLLUP_RP, "station": station})
        nowcast = [f for f in report.findings if storage.PM_NOWCAST in f.query]
        assert {f.where for f in nowcast} == {"Air quality now (NowCast) at each station [A]",
                                              "City-wide air quality now (NowCast) [A]", "Stations [D]",
                                              "Air quality now (NowCast) [A]"}
        assert all(f.status == PASS for f in nowcast), "\n".join(f"{f.where}: {f.detail}" for f in nowcast)

    def panel_rows(board: str, title: str, **variables) -> dict[str, dict]:
        results = _run_panel(influx, board, title, rollup_rp=ROLLUP_RP, **variables)
        return {s.get("tags", {}).get("station", ""): dict(zip(s["columns"], s["values"][0], strict=True))
                for s in results[0]["series"]}

    on_map = panel_rows("overview", "Air quality now (NowCast) at each station")
    assert sorted(on_map) == sorted(levels)
    assert on_map["smoke-9"]["AQI"] == storage.NOWCAST_BEYOND_AQI and on_map["smoke-9"]["NowCast"] == 400.0
    assert on_map["clean-8"]["AQI"] == aqi.us_aqi(12.0).value
    [smoke] = panel_rows("station", "Air quality now (NowCast)", station="smoke-9").values()
    assert smoke["AQI"] == storage.NOWCAST_BEYOND_AQI
    # What Grafana draws for it: the value mapping of the panel's AQI field.
    panel = next(p for p in iter_panels(BOARDS["station"]()) if p["title"] == "Air quality now (NowCast)")
    [override] = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "AQI"]
    [mapping] = next(p["value"] for p in override["properties"] if p["id"] == "mappings")
    assert mapping["options"]["from"] <= smoke["AQI"] and mapping["options"]["to"] is None
    assert mapping["options"]["result"] == {"text": aqi.BEYOND, "color": aqi.BEYOND_COLOUR, "index": 0}
