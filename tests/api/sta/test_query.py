"""Annex A request-data class: $top $skip $count $orderby $select $expand (nested, with
their own options) and server-driven paging, on catalogue entities and on Observations."""

from __future__ import annotations

from urllib.parse import urlsplit

from api.sta import ids, scan
from tests.api.conftest import T0
from tests.api.sta.conftest import N1


def get(sta, url, **params):
    r = sta.get(url if url.startswith("/") else urlsplit(url)._replace(scheme="", netloc="").geturl(),
                params=params or None)
    assert r.status_code == 200, r.text
    return r.json()


def pm25_of(sta, station):
    return next(d for d in get(sta, "/sta/v1.1/Datastreams", **{"$filter": "name eq 'PM2.5'"})["value"]
                if d["properties"]["station"] == station)


def test_top_skip_count_and_next_links_walk_the_whole_collection(sta):
    body = get(sta, "/sta/v1.1/Datastreams", **{"$top": "4", "$count": "true"})
    total = body["@iot.count"]
    assert total == 6 + 6 + 4 and len(body["value"]) == 4
    seen = [d["@iot.id"] for d in body["value"]]
    while "@iot.nextLink" in body:
        assert body["@iot.nextLink"].startswith("http://testserver/sta/v1.1/Datastreams?")
        body = get(sta, body["@iot.nextLink"])
        assert body["@iot.count"] == total  # stays right on pages reached by nextLink
        seen += [d["@iot.id"] for d in body["value"]]
    assert len(seen) == total == len(set(seen)) and seen == sorted(seen)
    assert get(sta, "/sta/v1.1/Datastreams", **{"$skip": "14"})["value"][0]["@iot.id"] == seen[14]
    assert sta.get("/sta/v1.1/Things", params={"$count": "maybe"}).status_code == 400
    assert sta.get("/sta/v1.1/Things", params={"$top": "-1"}).status_code == 400


def test_top_defaults_to_100_and_the_server_maximum_wins(sta):
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    assert len(get(sta, f"/sta/v1.1/Datastreams({ds})/Observations")["value"]) == 100
    body = get(sta, f"/sta/v1.1/Datastreams({ds})/Observations", **{"$top": "99999999"})
    assert len(body["value"]) == N1 and "@iot.nextLink" not in body
    for top in ("10000000000", "9" * 30):  # any larger value: the maximum still wins (was a 400 past 9 digits)
        body = get(sta, "/sta/v1.1/Observations", **{"$top": top, "$count": "true"})
        assert len(body["value"]) == body["@iot.count"] == 6 * 180 + 6 * 30 + 4 * 10
        assert len(get(sta, "/sta/v1.1/Things", **{"$top": top})["value"]) == 3


def test_skip_past_the_end_is_empty_and_past_the_observation_limit_501(sta):
    """$skip is not clamped (a clamped $skip answers rows of another page): past the end of a
    collection the page is empty; on Observations past options.MAX_SKIP it is 501, as the
    nextLinks page by time instead."""
    assert get(sta, "/sta/v1.1/Things", **{"$skip": "99999999999", "$count": "true"}) == {"@iot.count": 3, "value": []}
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    for url in (f"/sta/v1.1/Datastreams({ds})/Observations", "/sta/v1.1/Observations"):
        assert get(sta, url, **{"$skip": "1000000"})["value"] == []
        r = sta.get(url, params={"$skip": "1000001"})
        assert r.status_code == 501 and r.json()["message"]
        assert sta.get(url, params={"$skip": "9" * 30}).status_code == 501
    assert get(sta, f"/sta/v1.1/Datastreams({ds})/Observations",
               **{"$skip": "99999999999", "$orderby": "result"})["value"] == []  # sorted here: any $skip


def test_orderby_direction_in_any_case(sta):
    """frost-sta-client's orderby() sends `DESC`/`ASC` in capitals (FROST's server accepts them)."""
    for direction in ("DESC", "Desc", "desc"):
        body = get(sta, "/sta/v1.1/Datastreams", **{"$orderby": f"name {direction},id {direction.swapcase()}"})
        names = [d["name"] for d in body["value"]]
        assert names == sorted(names, reverse=True)
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    body = get(sta, f"/sta/v1.1/Datastreams({ds})/Observations", **{"$orderby": "phenomenonTime DESC", "$top": "2"})
    assert [o["result"] for o in body["value"]] == [179.0, 178.0]
    assert sta.get("/sta/v1.1/Things", params={"$orderby": "name descending"}).status_code == 400


def test_orderby_is_stable_with_ties_broken_by_id(sta):
    body = get(sta, "/sta/v1.1/Datastreams", **{"$orderby": "name desc", "$top": "1000"})
    keys = [(d["name"], d["@iot.id"]) for d in body["value"]]
    names = [k[0] for k in keys]
    assert names == sorted(names, reverse=True)
    for a, b in zip(keys, keys[1:], strict=False):
        if a[0] == b[0]:
            assert a[1] < b[1]
    things = get(sta, "/sta/v1.1/Things", **{"$orderby": "properties/station desc"})["value"]
    assert [t["properties"]["station"] for t in things] == ["lab-3", "lab-2", "lab-1"]


def test_select_limits_the_properties(sta):
    body = get(sta, "/sta/v1.1/Things", **{"$select": "name,id"})
    assert all(set(t) == {"@iot.id", "name"} for t in body["value"])
    body = get(sta, "/sta/v1.1/Observations", **{"$select": "result,phenomenonTime", "$top": "2"})
    assert all(set(o) == {"result", "phenomenonTime"} for o in body["value"])
    assert sta.get("/sta/v1.1/Things", params={"$select": "nope"}).status_code == 400


def test_expand_nested_with_its_own_options(sta):
    expand = ("Datastreams($filter=name eq 'PM2.5';$select=name,id;"
              "$expand=Observations($orderby=phenomenonTime desc;$top=2;$select=result),ObservedProperty)")
    things = get(sta, "/sta/v1.1/Things", **{"$expand": expand, "$orderby": "name"})["value"]
    lab1 = next(t for t in things if t["name"] == "Lab 1")
    (ds,) = lab1["Datastreams"]
    assert set(ds) == {"@iot.id", "name", "Observations", "Observations@iot.nextLink", "ObservedProperty"}
    assert [o["result"] for o in ds["Observations"]] == [179.0, 178.0]
    assert ds["ObservedProperty"]["name"] == "PM2.5"
    lab2 = next(t for t in things if t["name"] == "Taipei 2")
    assert len(lab2["Datastreams"]) == 2
    nxt = get(sta, ds["Observations@iot.nextLink"])
    assert nxt["value"][0]["result"] == 177.0
    # Path form and four levels of expansion
    obs = get(sta, "/sta/v1.1/Observations", **{"$top": "1", "$expand": "Datastream/Thing/Locations/Things"})
    thing = obs["value"][0]["Datastream"]["Thing"]
    assert thing["Locations"][0]["Things"][0]["@iot.id"] == thing["@iot.id"]


def test_expand_path_form_and_a_property_named_twice_are_merged(sta):
    """``Datastreams($top=2;$select=name),Datastreams/Observations($top=1)`` (pyCIOT writes this
    shape) expands each Datastream once, with both parts; the path form's nested $expand is in
    the expanded collection's nextLink too, so the next page is expanded alike."""
    for expand in ("Datastreams($top=2;$select=name),Datastreams/Observations($top=1;$select=result)",
                   "Datastreams/Observations($top=1;$select=result),Datastreams($top=2;$select=name)"):
        things = get(sta, "/sta/v1.1/Things", **{"$expand": expand, "$filter": "name eq 'Lab 1'"})["value"]
        (lab1,) = things
        assert [d["name"] for d in lab1["Datastreams"]] == ["PM2.5", "PM2.5 (raw)"]
        assert [d["Observations"] for d in lab1["Datastreams"]] == [[{"result": 0.0}], [{"result": 0.5}]]
        nxt = get(sta, lab1["Datastreams@iot.nextLink"])
        assert [d["name"] for d in nxt["value"]] == ["PM1", "PM10"]
        assert [d["Observations"] for d in nxt["value"]] == [[{"result": 1.0}], [{"result": 20.0}]]
    things = get(sta, "/sta/v1.1/Things", **{"$expand": "Datastreams/Observations/FeatureOfInterest($select=name)",
                                             "$filter": "name eq 'Lab 1'"})["value"]
    ds = things[0]["Datastreams"][0]
    assert ds["Observations"][0]["FeatureOfInterest"] == {"name": "Lab 1"}
    nxt = get(sta, ds["Observations@iot.nextLink"])
    assert nxt["value"][0]["FeatureOfInterest"] == {"name": "Lab 1"}
    r = sta.get("/sta/v1.1/Things", params={"$expand": "Datastreams($top=1),Datastreams($top=2)"})
    assert r.status_code == 400 and r.json()["message"]


def test_expand_with_count_and_paging_on_catalogue_sets(sta):
    things = get(sta, "/sta/v1.1/Things", **{"$expand": "Datastreams($top=2;$count=true)"})["value"]
    lab1 = next(t for t in things if t["name"] == "Lab 1")
    assert lab1["Datastreams@iot.count"] == 6 and len(lab1["Datastreams"]) == 2
    assert "$skip=2" in lab1["Datastreams@iot.nextLink"]


def test_observations_page_by_time_across_next_links_with_a_right_count(sta):
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    body = get(sta, f"/sta/v1.1/Datastreams({ds})/Observations", **{"$top": "70", "$count": "true"})
    results = [o["result"] for o in body["value"]]
    pages = 1
    while "@iot.nextLink" in body:
        assert "$skiptoken=" in body["@iot.nextLink"]
        body = get(sta, body["@iot.nextLink"])
        assert body["@iot.count"] == N1
        results += [o["result"] for o in body["value"]]
        pages += 1
    assert pages == 3 and results == [float(i) for i in range(N1)]


def test_observations_descending_keyset_and_skip(sta):
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    url = f"/sta/v1.1/Datastreams({ds})/Observations"
    body = get(sta, url, **{"$orderby": "phenomenonTime desc", "$top": "100", "$skip": "30"})
    assert body["value"][0]["result"] == 149.0
    body = get(sta, body["@iot.nextLink"])
    assert [o["result"] for o in body["value"]] == [float(i) for i in range(49, -1, -1)]
    assert "@iot.nextLink" not in body


def walk(sta, url, **params):
    body = get(sta, url, **params)
    out, counts = list(body["value"]), {body.get("@iot.count")}
    while "@iot.nextLink" in body:
        body = get(sta, body["@iot.nextLink"])
        out += body["value"]
        counts.add(body.get("@iot.count"))
    return out, counts


def test_observations_ordered_by_result_or_any_key_are_sorted_stable_and_paged(sta):
    """Annex A's $orderby test orders Observations by each of their properties and by several:
    orders InfluxDB cannot give (result, …) are sorted here, ties broken by id, paged by $skip."""
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    url = f"/sta/v1.1/Datastreams({ds})/Observations"
    got, counts = walk(sta, url, **{"$orderby": "result desc", "$top": "70", "$count": "true"})
    assert [o["result"] for o in got] == [float(i) for i in range(N1 - 1, -1, -1)] and counts == {N1}
    assert get(sta, url, **{"$orderby": "result", "$top": "3", "$skip": "5"})["value"][0]["result"] == 5.0
    everything, _ = walk(sta, "/sta/v1.1/Observations", **{"$top": "10000"})
    for order in ("result", "result asc", "result desc", "phenomenonTime,result", "resultTime desc,result desc",
                  "result,phenomenonTime desc", "Datastream/name desc,result"):
        page, counts = walk(sta, "/sta/v1.1/Observations", **{"$orderby": order, "$top": "97", "$count": "true"})
        assert sorted(o["@iot.id"] for o in page) == sorted(o["@iot.id"] for o in everything)
        assert counts == {len(everything)}
        first, _, direction = order.split(",")[0].partition(" ")
        if first == "result":  # (Annex A compares neighbours on the first key; ties by id, or the next key)
            keys = [(o["result"], o["@iot.id"], o["resultTime"]) for o in page]
            for a, b in zip(keys, keys[1:], strict=False):
                assert (a[0] > b[0] if direction == "desc" else a[0] < b[0]) or a[0] == b[0] and (
                    a[2] >= b[2] if "," in order else a[1] < b[1])
    filtered, counts = walk(sta, "/sta/v1.1/Observations", **{
        "$filter": f"Datastream/id eq {ds} and hour(phenomenonTime) eq 0", "$orderby": "result desc",
        "$count": "true", "$top": "25"})
    assert [o["result"] for o in filtered] == [float(i) for i in range(59, -1, -1)] and counts == {60}
    body = get(sta, "/sta/v1.1/Datastreams", **{"$filter": "name eq 'PM2.5'",
                                                 "$expand": "Observations($orderby=result desc;$top=2;$select=result)"})
    lab1 = next(d for d in body["value"] if d["@iot.id"] == ds)
    assert lab1["Observations"] == [{"result": 179.0}, {"result": 178.0}]
    assert "$skip=2" in lab1["Observations@iot.nextLink"]
    assert sta.get(url, params={"$orderby": "result", "$skiptoken": "1.1"}).status_code == 400
    assert get(sta, url, **{"$orderby": "result", "$top": "0", "$count": "true"}) == {"@iot.count": N1, "value": []}


def test_sorted_orders_read_at_most_max_scanned_rows_per_request(sta, monkeypatch):
    """The bound holds over the whole request: an $expand sorts every parent's Observations."""
    monkeypatch.setattr(scan, "MAX_SCANNED", N1)
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    assert len(get(sta, f"/sta/v1.1/Datastreams({ds})/Observations", **{"$orderby": "result"})["value"]) == 100
    r = sta.get(f"/sta/v1.1/Datastreams({ds})/Observations", params={"$orderby": "result", "$filter": "result ge 0"})
    assert r.status_code == 200
    r = sta.get("/sta/v1.1/Observations", params={"$orderby": "result"})
    assert r.status_code == 501 and "at most" in r.json()["message"]
    r = sta.get("/sta/v1.1/Datastreams", params={"$filter": "Thing/properties/station eq 'lab-1'",
                                                  "$expand": "Observations($orderby=result desc;$top=1)"})
    assert r.status_code == 501 and "at most" in r.json()["message"]  # 6 x 180 rows
    one = get(sta, "/sta/v1.1/Datastreams", **{"$filter": f"id eq {ds}",
                                               "$expand": "Observations($orderby=result desc;$top=1)"})
    assert one["value"][0]["Observations"][0]["result"] == float(N1 - 1)


def test_all_observations_page_through_every_datastream_in_time_then_id_order(sta):
    body = get(sta, "/sta/v1.1/Observations", **{"$top": "500", "$count": "true",
                                                  "$filter": "phenomenonTime lt 2026-01-01T00:10:00Z"})
    keys = []
    while True:
        keys += [(o["resultTime"], o["@iot.id"]) for o in body["value"]]
        if "@iot.nextLink" not in body:
            break
        body = get(sta, body["@iot.nextLink"])
    # 10 minutes: lab-1 6 properties x 10, lab-2 3 x 2 channels x 10, lab-3 4 x 5
    assert len(keys) == 60 + 60 + 20 == body["@iot.count"] and keys == sorted(keys) and len(set(keys)) == len(keys)


def test_the_map_request_is_one_influxdb_request_for_all_latest_values(sta, monkeypatch):
    from api.sta import observations

    monkeypatch.setattr(observations.time, "time", lambda: T0 + 86400)  # the readings are a day old
    calls = []
    influx = sta.app.state.influx
    original = influx.query

    async def counting(q, **kw):
        calls.append(q)
        return await original(q, **kw)

    sta.get("/sta/v1.1/Things")  # load the catalogue first
    influx.query = counting
    try:
        body = get(sta, "/sta/v1.1/Datastreams", **{
            "$filter": "name eq 'PM2.5'",
            "$expand": "Thing,Observations($orderby=phenomenonTime desc;$top=1)"})
    finally:
        influx.query = original
    assert len(calls) == 1 and "last(" in calls[0]
    latest = {d["Thing"]["properties"]["station"] + d["properties"]["channel"]: d["Observations"][0]["result"]
              for d in body["value"]}
    assert latest == {"lab-1a": 179.0, "lab-2a": 129.0, "lab-2b": 129.0, "lab-3a": 7.0}
    ds = body["value"][0]
    assert ds["Observations"][0]["@iot.id"] == ids.observation_id(ds["@iot.id"], T0 + 60 * 179)


def test_a_datastreams_observations_in_a_time_range(sta):
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    body = get(sta, f"/sta/v1.1/Datastreams({ds})/Observations", **{
        "$filter": "phenomenonTime ge 2026-01-01T01:00:00Z and phenomenonTime lt 2026-01-01T01:05:00Z",
        "$orderby": "phenomenonTime asc"})
    assert [o["result"] for o in body["value"]] == [60.0, 61.0, 62.0, 63.0, 64.0]


def test_many_series_are_split_over_statements_and_requests_with_the_same_answers(sta, monkeypatch):
    from api.sta import observations

    params = {"$filter": "Datastream/properties/channel eq 'a' and phenomenonTime lt 2026-01-01T00:30:00Z",
              "$top": "37", "$count": "true"}
    expand = {"$filter": "properties/station ne 'lab-3'", "$top": "3",
              "$expand": "Observations($orderby=phenomenonTime desc;$top=1)"}

    def walk():
        body = get(sta, "/sta/v1.1/Observations", **params)
        count, seen = body["@iot.count"], [o["@iot.id"] for o in body["value"]]
        while "@iot.nextLink" in body:
            body = get(sta, body["@iot.nextLink"])
            seen += [o["@iot.id"] for o in body["value"]]
        latest = [d["Observations"] for d in get(sta, "/sta/v1.1/Datastreams", **expand)["value"]]
        return count, seen, latest

    whole = walk()
    monkeypatch.setattr(observations, "SERIES_PER_STATEMENT", 1)
    monkeypatch.setattr(observations, "MAX_REQUEST_CHARS", 300)
    assert walk() == whole
    assert whole[0] == len(whole[1]) == 6 * 30 + 3 * 30 + 4 * 10  # lab-3 has 10 readings in all


def test_pre_rendered_observations_are_the_same_json_as_the_general_serialiser(sta):
    import orjson

    from api.sta import engine, observations
    from api.sta.model import Entity

    ds = Entity("Datastream", ids.datastream_id(5, "a", 0), {}, "s", "a", 0, "pms5003")
    raw = Entity("Datastream", ids.datastream_id(5, "b", 1), {}, "s", "b", 1, "pms5003")
    rows = [observations.Row(t, ids.observation_id(d.id, t), d, list(values.values()), {k: i for i, k in enumerate(values)}) for t, d, values in [
        (T0, ds, {"result": 12.5, "qc": 0, "n": 20, "window": 60, "pm25_method": "epa_barkjohn_2021"}),
        (T0 + 30, ds, {"result": 1e-05, "qc": 4 | 256, "n": None, "window": 120, "pm25_method": None}),
        (T0 + 59, raw, {"result": 3, "qc": None, "n": 2, "window": None, "pm25_method": 'a"b'}),
        (T0 + 86399, ds, {"result": -0.0, "qc": 2**62, "n": 1, "window": 0, "pm25_method": "x"}),
    ]]
    shared = {"result": 0, "qc": 1, "n": 2, "window": 3, "pm25_method": 4}  # a page's rows share one layout
    rows += [observations.Row(t, ids.observation_id(ds.id, t), ds, [7.25, 2, 3, w, "m"], shared) for t, w in [
        (951782400, 60),  # 2000-02-29T00:00:00Z: its window starts on the 28th
        (4107542399, 86400),  # 2100-02-28T23:59:59Z (2100 is no leap year)
        (-86400, 60),  # before the epoch
        (253402300799, 1),  # the last second of year 9999
    ]]
    ctx = engine.Context("http://h/sta/v1.1", None, None, None)  # type: ignore[arg-type]
    for some in (rows[:1], rows[4:], rows):
        fast = orjson.dumps(engine.serialise_observations(ctx, some))
        assert orjson.loads(fast) == [engine.serialise(ctx, r, None) for r in some]
        assert fast == orjson.dumps([engine.serialise(ctx, r, None) for r in some])
    assert b'"phenomenonTime":"2000-02-28T23:59:00Z/2000-02-29T00:00:00Z"' in fast
    odd = [observations.Row(1.5, 1, ds, [1.0, 0, 1, 60, None], shared)]  # not whole seconds: the general path
    assert orjson.dumps(engine.serialise_observations(ctx, odd)) == orjson.dumps([engine.serialise(ctx, odd[0], None)])


def test_served_pages_are_the_general_serialisers_json_however_influxdb_chunks_them(sta, monkeypatch):
    from api.sta import observations

    every = "id,@iot.selfLink,phenomenonTime,resultTime,result,resultQuality,validTime,parameters,Datastream," \
            "FeatureOfInterest"
    ds = pm25_of(sta, "lab-1")["@iot.id"]
    pages = [(f"/sta/v1.1/Datastreams({ds})/Observations", {"$top": "150"}),
             ("/sta/v1.1/Observations", {"$top": "300", "$orderby": "phenomenonTime desc"})]
    served = [get(sta, url, **params) for url, params in pages]
    for (url, params), body in zip(pages, served, strict=True):
        general = get(sta, url, **params, **{"$select": every})  # a Row at a time, to_json
        assert body["value"] == general["value"] and len(body["value"]) == int(params["$top"])
    monkeypatch.setattr(observations, "CHUNK_ROWS", 7)  # series split over many chunks (``partial``)
    assert [get(sta, url, **params) for url, params in pages] == served


def test_latest_looks_before_the_lookback_only_for_datastreams_without_recent_data(sta, monkeypatch):
    from api.sta import observations

    expand = {"$filter": "name eq 'PM2.5'", "$expand": "Observations($orderby=phenomenonTime desc;$top=1)"}
    calls = []
    influx = sta.app.state.influx
    original = influx.query

    async def counting(q, **kw):
        calls.append(q)
        return await original(q, **kw)

    sta.get("/sta/v1.1/Things")
    influx.query = counting
    try:
        # The seeded readings are of 2026-01-01: "now" a day later finds them all in one pass ...
        monkeypatch.setattr(observations.time, "time", lambda: T0 + 86400)
        recent = {d["@iot.id"]: d["Observations"] for d in get(sta, "/sta/v1.1/Datastreams", **expand)["value"]}
        assert len(calls) == 1
        # ... a year later, the second pass finds the same.
        monkeypatch.setattr(observations.time, "time", lambda: T0 + 366 * 86400)
        old = {d["@iot.id"]: d["Observations"] for d in get(sta, "/sta/v1.1/Datastreams", **expand)["value"]}
        assert len(calls) == 3 and old == recent and all(len(v) == 1 for v in old.values())
    finally:
        influx.query = original
