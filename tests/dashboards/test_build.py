"""Dashboards as code: the committed files are the build's output and pass the static checks."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard, RangeMap

from civicair.cli import main
from civicair.schema import storage
from dashboards import DATASOURCE_UID, JSON_DIR, PROVISIONING_DIR, retention
from dashboards import legend as aqi
from dashboards.boards import BOARDS
from dashboards.boards._shared import by_range
from dashboards.build import build, outputs
from dashboards.check import FAIL, check, iter_panels, provisioned_datasources, validate
from dashboards.grafana import InfluxQLQuery, register_influxql
from dashboards.macros import range_switch


def test_committed_files_are_exactly_what_the_code_builds():
    result = build(check=True)
    assert result.stale == [], "run: civicair dashboards build"
    assert len(result.unchanged) == len(BOARDS) + 3


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_committed_json_reads_back_through_grafanas_typed_schema_unchanged(name):
    """Every key of the committed JSON is one the SDK's model of Grafana 11.6 knows.

    ``from_json`` keeps only the fields of the schema, so a key Grafana would not know
    (a typo, a field of another version) is lost on the way back and the comparison fails.
    """
    register_default_plugins()
    register_influxql()
    committed = json.loads((JSON_DIR / f"{name}.json").read_text())
    board = Dashboard.from_json(committed)
    targets = [t for p in board.panels or [] for t in getattr(p, "targets", None) or []]
    assert targets and all(isinstance(t, InfluxQLQuery) for t in targets)
    assert json.loads(json.dumps(board, cls=JSONEncoder)) == committed


def test_a_key_outside_grafanas_schema_does_not_read_back():
    register_default_plugins()
    committed = json.loads((JSON_DIR / "station.json").read_text())
    committed["panels"][0]["fieldConfig"]["defaults"]["unitt"] = "percent"
    back = json.loads(json.dumps(Dashboard.from_json(committed), cls=JSONEncoder))
    assert "unitt" not in back["panels"][0]["fieldConfig"]["defaults"] and back != committed


def test_build_command_reports_nothing_to_do_when_up_to_date(capsys):
    assert main(["dashboards", "build", "--check"]) == 0
    assert "0 out of date" in capsys.readouterr().out


def test_build_writes_every_file_into_an_empty_tree(tmp_path):
    result = build(tmp_path / "json", tmp_path / "prov")
    assert len(result.written) == len(outputs())
    assert build(tmp_path / "json", tmp_path / "prov", check=True).stale == []


def test_committed_dashboards_pass_the_static_checks():
    report = check(None)
    assert [f for f in report.findings if f.status == FAIL] == []


def test_both_datasource_variants_carry_the_uid_the_dashboards_use():
    for name in ("influxdb-v1.yaml", "influxdb-v2-token.yaml"):
        doc = yaml.safe_load((PROVISIONING_DIR / "datasources" / name).read_text())
        [ds] = doc["datasources"]
        assert ds["uid"] == DATASOURCE_UID
        assert ds["jsonData"]["version"] == "InfluxQL" and ds["jsonData"]["dbName"] == "airquality"
        # No secret is written: only references to Grafana's environment.
        for value in ds.get("secureJsonData", {}).values():
            assert "${" in value
    token = yaml.safe_load((PROVISIONING_DIR / "datasources" / "influxdb-v2-token.yaml").read_text())
    assert token["datasources"][0]["jsonData"]["httpHeaderName1"] == "Authorization"
    assert token["datasources"][0]["secureJsonData"]["httpHeaderValue1"].startswith("Token ")


def test_every_query_is_raw_influxql():
    for name, build_board in BOARDS.items():
        for panel in iter_panels(build_board()):
            for t in panel.get("targets", []):
                assert t["rawQuery"] is True and t["query"].lstrip().upper().startswith(("SELECT", "SHOW"))
                assert "from(bucket" not in t["query"], f"{name}: Flux is not used"


def _bad_tree(tmp_path: Path, mutate) -> tuple[Path, Path]:
    json_dir, prov = tmp_path / "json", tmp_path / "prov"
    shutil.copytree(JSON_DIR, json_dir)
    shutil.copytree(PROVISIONING_DIR, prov)
    board = json.loads((json_dir / "station.json").read_text())
    mutate(board)
    (json_dir / "station.json").write_text(json.dumps(board))
    return json_dir, prov


@pytest.mark.parametrize("mutate, expected", [
    (lambda b: b.update(uid="civicair-overview"), "also used by"),
    (lambda b: b.pop("schemaVersion"), "schemaVersion"),
    (lambda b: b["panels"][4].update(datasource={"type": "influxdb", "uid": "elsewhere"}), "not provisioned"),
    (lambda b: b["panels"][4]["targets"][0].update(datasource="InfluxDB"), "by name"),
    (lambda b: b["templating"]["list"].clear(), "undefined $station"),
    (lambda b: b["panels"][4].update(description=""), "no description"),
    (lambda b: b["panels"][5]["targets"][1].update(refId="A"), "refId A used twice"),
    (lambda b: b["panels"][5].update(id=1), "used twice"),
    (lambda b: b["panels"][4]["targets"][0].update(rawQuery=False), "not a raw InfluxQL query"),
    (lambda b: b["panels"][5]["targets"][2].update(hide=True), "1 of its queries are on for a range of 2592001 s"),
    (lambda b: [t.update(hide=True) for t in b["panels"][5]["targets"][2::3]],
     "no query is on for a range of 2592001 s"),
    (lambda b: b["panels"][5]["targets"][1].update(query=b["panels"][5]["targets"][1]["query"].replace(
        "$__range_s <= 2592000", "$__range_s <= 604800")), "1 of its queries are on for a range of 604801 s"),
], ids=["duplicate uid", "no schemaVersion", "unknown datasource", "datasource by name",
        "undefined variable", "no description", "duplicate refId", "duplicate panel id", "builder query",
        "hidden daily form", "every daily form hidden", "gap between hourly and daily"])
def test_static_checks_catch(tmp_path, mutate, expected):
    json_dir, prov = _bad_tree(tmp_path, mutate)
    failures = [f for f in check(None, json_dir, prov).findings if f.status == FAIL]
    assert any(expected in f.detail for f in failures), failures


def test_check_command_fails_on_a_broken_tree(tmp_path, capsys):
    json_dir, prov = _bad_tree(tmp_path, lambda b: b.pop("schemaVersion"))
    assert main(["dashboards", "check", "--no-queries", "--json-dir", str(json_dir),
                 "--provisioning-dir", str(prov)]) == 1
    assert "schemaVersion is not set" in capsys.readouterr().out


def test_validate_needs_no_database_and_reads_the_provisioned_min_interval():
    ds = provisioned_datasources()
    assert ds[DATASOURCE_UID].min_interval_ms == 60_000
    assert validate({n: b() for n, b in BOARDS.items()}, ds) == []


def test_aqi_thresholds_are_the_2024_breakpoints_with_epa_colours():
    steps = aqi.thresholds().build().steps
    assert [s.value for s in steps] == [None, 9.1, 35.5, 55.5, 125.5, 225.5]
    assert [s.color for s in steps] == ["#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#8F3F97", "#7E0023"]


def _grafana_category(value: float) -> str:
    """A Grafana range mapping: from <= value <= to (a missing bound is open)."""
    for m in aqi.value_mappings():
        assert isinstance(m, RangeMap) and m.options is not None and m.options.result is not None
        low, high = m.options.from_val, m.options.to
        if (low is None or value >= low) and (high is None or value <= high):
            return m.options.result.text or ""
    raise AssertionError(value)


@pytest.mark.parametrize("value, category", [
    (0.0, "Good"), (9.0, "Good"), (9.05, "Good"), (9.1, "Moderate"), (35.4, "Moderate"),
    (35.45, "Moderate"), (35.5, "Unhealthy for Sensitive Groups"), (55.5, "Unhealthy"),
    (125.5, "Very Unhealthy"), (225.4, "Very Unhealthy"), (225.5, "Hazardous"), (900, "Hazardous"),
])
def test_aqi_categories_truncate_to_one_decimal_as_the_epa_does(value, category):
    assert _grafana_category(value) == category


def test_every_quality_flag_has_a_legend_on_the_health_board():
    from civicair.schema.qc import Flag

    legend = [(bit, label) for bit, label, _ in aqi.qc_flags()]
    assert [bit for bit, _ in legend] == list(Flag)
    text = json.dumps(BOARDS["network-health"]())
    assert all(label in text for _, label in legend)


SPANS_S = (60, 3600, 86400, 172800, 172801, 7 * 86400, 2592000, 2592001, 365 * 86400)


def _switched_panels() -> list[tuple[str, dict]]:
    return [(name, p) for name, build in BOARDS.items() for p in iter_panels(build())
            if any(range_switch(t["query"]) for t in p.get("targets", []))]


def test_every_time_series_over_pm_switches_to_the_rollups_on_long_ranges():
    """Issue 14: a panel that draws readings over the time range reads the rollups beyond 2 days
    (except the coverage panels: the rollups keep no window lengths; docs/dashboards.md)."""
    switched = {p["title"] for _, p in _switched_panels()}
    for name, board in BOARDS.items():
        for panel in iter_panels(board()):
            series = panel["type"] in ("timeseries", "state-timeline")
            reads_pm = any('FROM "pm"' in t["query"] and "$timeFilter" in t["query"]
                           for t in panel.get("targets", []))
            if series and reads_pm and "coverage" not in panel["title"].lower():
                assert panel["title"] in switched, f"{name}: {panel['title']} reads raw at every range"
    assert len(switched) == 8


@pytest.mark.parametrize("span_s", SPANS_S)
def test_at_any_range_a_switched_panel_reads_exactly_one_source(span_s):
    """Raw up to 2 days, the hourly rollup up to 30, the daily beyond: never two at once."""
    expected = storage.PM if span_s <= 172800 else storage.PM_1H if span_s <= 2592000 else storage.PM_1D
    for name, panel in _switched_panels():
        on = [t for t in panel["targets"] if (sw := range_switch(t["query"])) is None or sw.on(span_s)]
        found = [re.search(r'FROM ("\$rollup_rp"\.)?"(\w+)"', t["query"].split("FROM (")[-1]) for t in on]
        sources = {m.group(2) for m in found if m}
        assert sources == {expected}, (name, panel["title"], span_s, sources)
        # The rollups in their retention policy, the readings in the default one.
        assert all(bool(m.group(1)) == (expected != storage.PM) for m in found if m), (name, panel["title"])
        # The same series on each side of a switch: as many queries on at every range.
        assert len(on) == len(panel["targets"]) // 3


def test_rollup_queries_use_the_schemas_fields():
    names = set(storage.ROLLUP_FIELDS)
    for _, panel in _switched_panels():
        for t in panel["targets"]:
            if storage.PM_1H in t["query"] or storage.PM_1D in t["query"]:
                fields = set(re.findall(r'(?:sum|mean|median)\("(\w+)"\)', t["query"]))
                assert fields and fields <= names, (panel["title"], fields - names)


def test_a_switched_query_needs_a_time_filter():
    with pytest.raises(ValueError, match=r"needs a \$timeFilter"):
        by_range('SELECT mean("pm25") FROM "pm"', 'SELECT mean("pm25_mean_all") FROM "{measurement}"')


def test_nowcast_panels_read_the_nowcast_and_say_what_it_is():
    """Issue 12: the map, the city-wide and the station's current panels show the NowCast."""
    titles = {"overview": ["Air quality now (NowCast) at each station", "City-wide air quality now (NowCast)",
                           "Stations"],
              "station": ["Air quality now (NowCast)"]}
    for name, wanted in titles.items():
        panels = {p["title"]: p for p in iter_panels(BOARDS[name]())}
        for title in wanted:
            panel = panels[title]
            assert any(f'FROM "$rollup_rp"."{storage.PM_NOWCAST}"' in t["query"] for t in panel["targets"]), title
            assert aqi.NOWCAST in panel["description"], title
    # Beside the NowCast, the 1-minute value where it helps.
    assert "PM2.5, latest minute" in {p["title"] for p in iter_panels(BOARDS["station"]())}
    city = next(p for p in iter_panels(BOARDS["overview"]()) if p["title"].startswith("City-wide air"))
    assert any('FROM "pm"' in t["query"] for t in city["targets"])


def test_aqi_index_thresholds_are_the_categories_index_bounds():
    steps = aqi.aqi_thresholds().build().steps
    assert [s.value for s in steps] == [None, 51, 101, 151, 201, 301, 500.5]  # then "Beyond the AQI"
    assert [s.color for s in steps] == [s.color for s in aqi.thresholds().build().steps] + ["#7E0023"]


def test_geomap_reads_the_fields_its_queries_return():
    overview = BOARDS["overview"]()
    geomap = next(p for p in overview["panels"] if p["type"] == "geomap")
    layer = geomap["options"]["layers"][0]
    queries = " ".join(t["query"] for t in geomap["targets"])
    for field in (layer["location"]["latitude"], layer["location"]["longitude"],
                  layer["config"]["style"]["color"]["field"], layer["config"]["style"]["text"]["field"]):
        assert f'AS "{field}"' in queries
    join = {"id": "joinByField", "options": {"byField": "station", "mode": "inner"}}
    assert join in geomap["transformations"]


def test_boards_do_not_share_state_between_builds():
    a = BOARDS["overview"]()
    b = copy.deepcopy(a)
    a["panels"][0]["title"] = "changed"
    assert BOARDS["overview"]() == b


ROLLUP_MEASUREMENTS = (storage.PM_1H, storage.PM_1D, storage.PM_NOWCAST)


def test_every_rollup_and_nowcast_query_names_the_rollups_retention_policy():
    """The rollup worker writes pm_1h, pm_1d and pm_nowcast to CIVICAIR_ROLLUP_RP: every query
    reads them as "$rollup_rp"."<measurement>", and each board defines the hidden constant,
    committed empty (the database's default policy)."""
    read = set()
    for name, make in BOARDS.items():
        board = make()
        queries = [t["query"] for p in iter_panels(board) for t in p.get("targets", [])]
        for q in queries:
            for m in ROLLUP_MEASUREMENTS:
                bare = re.findall(rf'FROM "{m}"', q)
                assert not bare, (name, q)
                if f'"$rollup_rp"."{m}"' in q:
                    read.add(m)
        [var] = [v for v in board["templating"]["list"] if v["name"] == retention.VARIABLE]
        assert (var["type"], var["query"], var["hide"], var["skipUrlSync"]) == ("constant", "", 2, True)
    assert read == set(ROLLUP_MEASUREMENTS)


def test_build_writes_boards_for_a_named_policy_elsewhere_only(tmp_path, capsys):

    out = tmp_path / "boards"
    assert main(["dashboards", "build", "--rollup-rp", "forever", "--out", str(out)]) == 0
    for name in BOARDS:
        board = json.loads((out / f"{name}.json").read_text())
        assert retention.rollup_rp_of(board) == "forever"
        assert board == retention.with_rollup_rp(BOARDS[name](), "forever")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.json" for n in BOARDS)  # no provisioning
    capsys.readouterr()
    assert main(["dashboards", "build", "--rollup-rp", "forever"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["dashboards", "build", "--rollup-rp", 'x"; DROP', "--out", str(out)]) == 2
    assert "letters, digits" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ['x"y', "a b", "rp.x", "$rollup_rp"])
def test_a_policy_name_influxql_would_need_to_escape_is_refused(bad):
    with pytest.raises(ValueError, match="letters, digits"):
        retention.checked(bad)
    with pytest.raises(ValueError, match="letters, digits"):
        retention.with_rollup_rp(BOARDS["station"](), bad)


def _aqi_overrides():
    for name, make in BOARDS.items():
        for panel in iter_panels(make()):
            for o in panel.get("fieldConfig", {}).get("overrides", []):
                if o["matcher"]["options"] in ("AQI", "AQI (NowCast)"):
                    yield name, panel["title"], {p["id"]: p["value"] for p in o["properties"]}


def _shown(props: dict, value: float) -> tuple[str | None, str]:
    """(text, colour) Grafana shows for an AQI value: the first matching range mapping, else
    the number coloured by the last threshold step at or below it."""
    for m in props.get("mappings", []):
        low, high = m["options"]["from"], m["options"]["to"]
        if (low is None or value >= low) and (high is None or value <= high):
            return m["options"]["result"]["text"], m["options"]["result"]["color"]
    steps = props["thresholds"]["steps"]
    colour = [s["color"] for s in steps if s["value"] is None or value >= s["value"]][-1]
    return None, colour


def test_an_aqi_beyond_the_index_shows_as_beyond_the_aqi_in_maroon():
    """pm_nowcast stores 501 above 325.4 µg/m³ (storage.NOWCAST_BEYOND_AQI): the map, the
    city-wide stat, the Stations table and the Station board's stat show "Beyond the AQI" in the
    top band's maroon, and the index itself (0–500) as numbers in their category's colour."""
    from civicair.schema import aqi as schema_aqi

    panels = {(name, title) for name, title, _ in _aqi_overrides()}
    assert panels == {("overview", "Air quality now (NowCast) at each station"),
                      ("overview", "City-wide air quality now (NowCast)"), ("overview", "Stations"),
                      ("station", "Air quality now (NowCast)")}
    for _, _, props in _aqi_overrides():
        assert _shown(props, storage.NOWCAST_BEYOND_AQI) == (schema_aqi.BEYOND, schema_aqi.BEYOND_COLOUR)
        assert _shown(props, 500.5) == (schema_aqi.BEYOND, schema_aqi.BEYOND_COLOUR)  # a median 500 / 501
        for c in schema_aqi.CATEGORIES:
            assert _shown(props, c.aqi_low) == (None, c.colour)
            assert _shown(props, c.aqi_high) == (None, c.colour)


def test_the_colour_legend_has_a_row_beyond_the_index():
    from civicair.schema import aqi as schema_aqi

    rows = aqi.legend_markdown().splitlines()
    assert len(rows) == 2 + len(schema_aqi.CATEGORIES) + 1
    assert "| 225.5 – 325.4 |" in rows[-2] and "Hazardous" in rows[-2]
    assert rows[-1].startswith("| above 325.4 |") and schema_aqi.BEYOND in rows[-1]
