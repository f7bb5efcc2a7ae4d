"""The helpers over Grafana's typed builders: layout, query letters, the InfluxQL target."""

from __future__ import annotations

import json

import pytest
from grafana_foundation_sdk.builders import stat, text
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.grafana import InfluxQL, InfluxQLQuery, as_json, dashboard, place, queries


def _box(w: int, h: int) -> text.Panel:
    return text.Panel().title(f"{w}x{h}").span(w).height(h)


def test_panels_fall_into_the_highest_free_place_leftmost_first():
    panels = [_box(16, 17), _box(8, 6), _box(8, 11), _box(24, 10), _box(12, 4), _box(12, 4)]
    place(panels)
    spots = [(p.build().id_val, p.build().grid_pos.x, p.build().grid_pos.y) for p in panels]
    assert spots == [(1, 0, 0), (2, 16, 0), (3, 16, 6), (4, 0, 17), (5, 0, 27), (6, 12, 27)]


def test_the_dashboard_keeps_the_placed_positions():
    board = as_json(dashboard("u", "t", "d", [_box(16, 17), _box(8, 6), _box(8, 11)], tags=[]))
    assert [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]] == [(0, 0), (16, 0), (16, 6)]


def test_a_panel_without_a_size_is_refused():
    with pytest.raises(ValueError, match="has no size"):
        place([stat.Panel().title("no size")])


def test_queries_are_lettered_in_order_as_grafana_letters_them():
    lettered = queries(*[InfluxQL("SELECT 1") for _ in range(54)])
    refs = [q.build().ref_id for q in lettered]
    assert refs[:2] == ["A", "B"] and refs[25:28] == ["Z", "AA", "AB"] and refs[51:] == ["AZ", "BA", "BB"]
    assert len(set(refs)) == len(refs)


def test_influxql_target_round_trips_and_collapses_whitespace():
    built = InfluxQL('SELECT  mean("pm25")\n   FROM "pm"').alias("sensor $tag_channel").table().ref_id("C").build()
    doc = as_json_target(built)
    assert doc == {"refId": "C", "datasource": {"type": "influxdb", "uid": "civicair-influxdb"},
                   "query": 'SELECT mean("pm25") FROM "pm"', "rawQuery": True, "resultFormat": "table",
                   "alias": "sensor $tag_channel"}
    assert as_json_target(InfluxQLQuery.from_json(doc)) == doc


def as_json_target(q: InfluxQLQuery) -> dict:
    return json.loads(json.dumps(q, cls=JSONEncoder))
