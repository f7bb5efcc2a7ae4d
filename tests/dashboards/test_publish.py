"""`civicair dashboards publish` against an in-process fake of Grafana's HTTP API.

Not a real Grafana: the fake (tests/dashboards/fake_grafana.py) answers the few
endpoints publish uses the way Grafana 11 does and records every write, which is
what the idempotence promise is about.
"""

from __future__ import annotations

import pytest

from civicair.cli import main
from dashboards import DATASOURCE_UID, FOLDER_UID
from dashboards.boards import BOARDS
from dashboards.publish import (
    CREATED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    InfluxTarget,
    PublishError,
    connect,
    publish,
)
from tests.dashboards.fake_grafana import FakeGrafana

TARGET = InfluxTarget(url="http://influxdb:8086", token="influx-read-token")


@pytest.fixture
def grafana():
    with FakeGrafana() as fake:
        yield fake


@pytest.fixture
def api(grafana):
    return connect(grafana.url, grafana.token)


def outcomes(actions) -> dict[str, str]:
    return {f"{a.kind}:{a.name}": a.outcome for a in actions}


def test_first_run_creates_everything_and_second_run_writes_nothing(grafana, api):
    first = publish(api, TARGET)
    assert set(outcomes(first).values()) == {CREATED}
    assert len(first) == 2 + len(BOARDS)
    writes = len(grafana.writes)
    assert writes == 2 + len(BOARDS)

    second = publish(api, TARGET)
    assert set(outcomes(second).values()) == {UNCHANGED}
    assert len(grafana.writes) == writes, grafana.writes[writes:]


def test_dashboards_land_in_the_folder_with_the_built_content(grafana, api):
    publish(api, TARGET)
    assert grafana.folders[FOLDER_UID]["title"] == "Air quality"
    for build in BOARDS.values():
        board = build()
        stored = grafana.dashboards[board["uid"]]
        assert stored["meta"]["folderUid"] == FOLDER_UID
        assert stored["dashboard"]["panels"] == board["panels"]


def test_only_what_changed_on_the_server_is_written_back(grafana, api):
    publish(api, TARGET)
    grafana.dashboards["civicair-station"]["dashboard"]["title"] = "edited in the UI"
    grafana.folders[FOLDER_UID]["title"] = "renamed"
    before = len(grafana.writes)
    actions = outcomes(publish(api, TARGET))
    assert actions["dashboard:Air quality: station"] == UPDATED
    assert actions["folder:Air quality"] == UPDATED
    assert sum(1 for v in actions.values() if v == UNCHANGED) == 1 + len(BOARDS) - 1
    assert len(grafana.writes) == before + 2
    assert grafana.dashboards["civicair-station"]["dashboard"]["title"] == "Air quality: station"


def test_datasource_secrets_are_sent_on_create_and_only_on_request_afterwards(grafana, api):
    publish(api, TARGET)
    created = grafana.writes[1]
    assert created[1] == "/api/datasources"
    assert created[2]["secureJsonData"] == {"httpHeaderValue1": "Token influx-read-token"}
    assert created[2]["jsonData"]["httpHeaderName1"] == "Authorization"

    grafana.datasources[DATASOURCE_UID]["url"] = "http://elsewhere:8086"
    actions = outcomes(publish(api, TARGET))
    assert actions["datasource:civicair InfluxDB"] == UPDATED
    assert "secureJsonData" not in grafana.writes[-1][2]  # Grafana keeps the stored secret

    actions = outcomes(publish(api, TARGET, update_secrets=True))
    assert actions["datasource:civicair InfluxDB"] == UPDATED
    assert grafana.writes[-1][2]["secureJsonData"] == {"httpHeaderValue1": "Token influx-read-token"}


def test_a_provisioned_read_only_datasource_is_left_alone(grafana, api):
    grafana.datasources[DATASOURCE_UID] = {"uid": DATASOURCE_UID, "name": "x", "type": "influxdb",
                                           "id": 1, "version": 1, "readOnly": True}
    actions = outcomes(publish(api, TARGET))
    assert actions["datasource:civicair InfluxDB"] == SKIPPED
    assert not any("/datasources" in path for _, path, _ in grafana.writes)


def test_username_password_datasource(grafana, api):
    publish(api, InfluxTarget(url="http://influxdb:8086", username="civicair-read", password="pw"))
    ds = grafana.datasources[DATASOURCE_UID]
    assert ds["user"] == "civicair-read" and ds["secureJsonData"] == {"password": "pw"}
    assert outcomes(publish(api, InfluxTarget(url="http://influxdb:8086", username="civicair-read",
                                              password="pw")))["datasource:civicair InfluxDB"] == UNCHANGED


def test_dry_run_writes_nothing(grafana, api):
    actions = publish(api, TARGET, dry_run=True)
    assert set(outcomes(actions).values()) == {CREATED}
    assert grafana.writes == []


def test_command_twice_reports_unchanged_and_never_prints_secrets(grafana, monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_URL", grafana.url)
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)
    monkeypatch.setenv("CIVICAIR_GRAFANA_INFLUX_URL", "http://influxdb:8086")
    monkeypatch.setenv("CIVICAIR_GRAFANA_INFLUX_TOKEN", "influx-read-token")
    assert main(["dashboards", "publish"]) == 0
    first = capsys.readouterr().out
    assert first.count("created") == 2 + len(BOARDS)
    writes = len(grafana.writes)
    assert main(["dashboards", "publish"]) == 0
    second = capsys.readouterr().out
    assert second.count("unchanged") == 2 + len(BOARDS) and "created" not in second
    assert len(grafana.writes) == writes
    assert "influx-read-token" not in first + second and grafana.token not in first + second


def test_command_refuses_to_run_without_a_token(monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert main(["dashboards", "publish"]) == 2
    assert "GRAFANA_TOKEN" in capsys.readouterr().err


def test_wrong_token_is_an_error_not_a_silent_success(grafana):
    from grafana_client.client import GrafanaUnauthorizedError

    with pytest.raises(GrafanaUnauthorizedError):
        publish(connect(grafana.url, "wrong"), TARGET)


def test_missing_influx_url_is_explained():
    with pytest.raises(PublishError, match="CIVICAIR_GRAFANA_INFLUX_URL"):
        InfluxTarget.from_env({})


def test_nothing_to_publish_is_an_error_before_any_write(grafana, api, tmp_path):
    with pytest.raises(PublishError, match="dashboards build"):
        publish(api, TARGET, json_dir=tmp_path)
    assert grafana.writes == []


def test_the_rollups_policy_is_set_from_the_environment_and_publishing_again_changes_nothing(
        grafana, monkeypatch, capsys):
    """CIVICAIR_ROLLUP_RP (the rollup worker's) sets each board's hidden $rollup_rp constant."""
    from dashboards import retention

    monkeypatch.setenv("GRAFANA_URL", grafana.url)
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)
    monkeypatch.setenv("CIVICAIR_ROLLUP_RP", "forever")
    assert main(["dashboards", "publish", "--no-datasource"]) == 0
    for build in BOARDS.values():
        stored = grafana.dashboards[build()["uid"]]["dashboard"]
        assert retention.rollup_rp_of(stored) == "forever"
        assert '"$rollup_rp"."pm_' in str(stored["panels"])  # the queries keep the variable
    writes = len(grafana.writes)
    capsys.readouterr()
    assert main(["dashboards", "publish", "--no-datasource"]) == 0
    assert capsys.readouterr().out.count("unchanged") == 1 + len(BOARDS)
    assert len(grafana.writes) == writes

    monkeypatch.delenv("CIVICAIR_ROLLUP_RP")  # back to the default policy: every board changes
    assert main(["dashboards", "publish", "--no-datasource"]) == 0
    assert capsys.readouterr().out.count("updated") == len(BOARDS)
    assert all(retention.rollup_rp_of(b["dashboard"]) == "" for b in grafana.dashboards.values())


def test_a_bad_policy_name_is_refused_before_any_write(grafana, api, monkeypatch, capsys):
    with pytest.raises(PublishError, match="letters, digits"):
        publish(api, TARGET, rollup_rp='x" OR 1=1')
    monkeypatch.setenv("GRAFANA_URL", grafana.url)
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)
    monkeypatch.setenv("CIVICAIR_ROLLUP_RP", "two words")
    assert main(["dashboards", "publish", "--no-datasource"]) == 2
    assert "CIVICAIR_ROLLUP_RP" in capsys.readouterr().err
    assert grafana.writes == []
