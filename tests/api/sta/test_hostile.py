"""Hostile paths and query options: 400/404/501 with a message, never a 5xx, and never any
of the client's text inside the InfluxQL sent to the database."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import make_client

MARK = "zq9x"  # appears in every hostile string; must never reach InfluxDB

HOSTILE = [
    ("/sta/v1.1/Observations", {"$filter": f"result gt 1; DROP DATABASE {MARK}"}),
    ("/sta/v1.1/Observations", {"$filter": f"Datastream/name eq '{MARK}'' OR 1=1 --'"}),
    ("/sta/v1.1/Observations", {"$filter": f"result gt '{MARK}'"}),
    ("/sta/v1.1/Observations", {"$filter": f"{MARK}(result) gt 1"}),
    ("/sta/v1.1/Observations", {"$filter": "result gt " + "9" * 400}),
    ("/sta/v1.1/Observations", {"$filter": f"result gt 1e301 and Datastream/name eq '{MARK}'"}),
    ("/sta/v1.1/Observations", {"$filter": f"result mul 1e200 mul 1e200 gt 1 and Datastream/name eq '{MARK}'"}),
    ("/sta/v1.1/Observations", {"$filter": "(" * 200 + "result gt 1" + ")" * 200}),
    ("/sta/v1.1/Observations", {"$filter": f"phenomenonTime ge 9999-01-01T00:00:00Z and {MARK} eq 1"}),
    ("/sta/v1.1/Observations", {"$orderby": f"{MARK} desc"}),
    ("/sta/v1.1/Observations", {"$orderby": f"phenomenonTime desc; DROP {MARK}"}),
    ("/sta/v1.1/Things", {"$orderby": f"name {MARK}"}),
    ("/sta/v1.1/Things", {"$expand": f"Datastreams($filter={MARK}(x))"}),
    ("/sta/v1.1/Things", {"$expand": "Datastreams($expand=Thing($expand=" * 20 + "Thing" + "))" * 20}),
    ("/sta/v1.1/Things", {"$expand": f"{MARK}"}),
    ("/sta/v1.1/Things", {"$expand": "Datastreams($top=1"}),
    ("/sta/v1.1/Things", {"$expand": f"Datastreams($bogus={MARK})"}),
    ("/sta/v1.1/Things", {"$expand": "Datastreams(top=1)"}),
    ("/sta/v1.1/Things", {"$select": f"name;{MARK}"}),
    ("/sta/v1.1/Things", {"$top": f"1{MARK}"}),
    ("/sta/v1.1/Things", {"$top": "0", "$filter": f"name eq '{MARK}'"}),
    ("/sta/v1.1/Things", {"$resultFormat": "dataArray"}),
    ("/sta/v1.1/Things", {"$unknown": MARK}),
    ("/sta/v1.1/Things", {"$skiptoken": f"1.{MARK}"}),
    ("/sta/v1.1/Observations", {"$skiptoken": f"1.{MARK}"}),
    ("/sta/v1.1/Things", {"$filter": "name eq '" + MARK * 1000 + "'"}),
    (f"/sta/v1.1/Things({MARK})", {}),
    ("/sta/v1.1/Things(1)/../../v1/stations", {}),
    (f"/sta/v1.1/Things/{MARK}/$value", {}),
    ("/sta/v1.1/Datastreams(15)/Observations(1)/$value", {}),
    ("/sta/v1.1/" + "Things/" * 40, {}),
]


@pytest.fixture
def recording(sta):
    """Every InfluxQL statement the app sends (the app's own client, counted, not replaced)."""
    sent: list[str] = []
    influx = sta.app.state.influx
    original = influx.query

    async def record(q, **kw):
        sent.append(q)
        return await original(q, **kw)

    influx.query = record
    yield sent
    influx.query = original


@pytest.mark.parametrize("url, params", HOSTILE, ids=[f"{u[10:30]} {list(p)[:1]}" for u, p in HOSTILE])
def test_hostile_requests_get_a_4xx_or_501_with_a_message(sta, recording, url, params):
    r = sta.get(url, params=params)
    if r.status_code == 200:  # a well-formed string literal that matches nothing: just data
        assert r.json() == {"value": []}
    else:
        assert r.status_code in (400, 404, 501), (r.status_code, r.text[:300])
        assert r.json()["detail"] and MARK not in r.json()["detail"]
    assert not any(MARK in q for q in recording)


@pytest.mark.parametrize("token", ["253402300800.1", "10000000000000.5", "99999999999.1", "9999999999.1",
                                   "4294967296.1", "1." + "9" * 40])
@pytest.mark.parametrize("url", ["/sta/v1.1/Observations", "/sta/v1.1/Datastreams(1)/Observations"])
def test_a_skiptoken_no_nextlink_can_hold_is_a_400(sta, url, token):
    """Its time past any Observation id's (32 bits of seconds) or InfluxDB's range: a 400 with a
    message, never a 500 (datetime overflow) or InfluxDB's own refusal."""
    for order in ("phenomenonTime asc", "phenomenonTime desc"):
        r = sta.get(url, params={"$skiptoken": token, "$orderby": order})
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert r.json()["message"] == "$skiptoken must be copied from an @iot.nextLink"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(list("() ,;'/$=-.:0123456789aeglnorqtxdsPTZ") +
                                     ["eq ", "and ", "not ", "result", "name", "geography'", "POINT(1 2)",
                                      "phenomenonTime", "Datastream/", "geo.distance(", "2026-01-01T00:00:00Z",
                                      "$top=1", "$expand=", "Thing", "Observations"]),
                     max_size=30).map("".join),
       option=st.sampled_from(["$filter", "$orderby", "$expand", "$select"]),
       entity_set=st.sampled_from(["Things", "Observations", "Datastreams"]))
def test_arbitrary_option_text_never_gives_a_server_error(sta, text, option, entity_set):
    r = sta.get(f"/sta/v1.1/{entity_set}", params={option: text, "$top": "2"})
    assert r.status_code in (200, 400, 404, 501), (option, text, r.status_code, r.text[:300])


def test_database_errors_carry_a_message_too(influxdb, influx):
    """503 (InfluxDB down, also while the catalogue loads) is answered with ``message`` beside
    ``detail``, as every other SensorThings error, where FROST's client reads it."""
    with make_client(influxdb) as client:
        influxdb.stop()
        for url in ("/sta/v1.1/Things", "/sta/v1.1/Observations", "/sta/v1.1/Datastreams(1)/Observations"):
            r = client.get(url)
            assert r.status_code == 503 and r.json()["code"] == "unavailable", r.text
            assert r.json()["message"] == r.json()["detail"] and r.headers["retry-after"]
