"""docker-compose.yml, the Dockerfile and .env.example: valid, complete, nothing secret.

`docker-compose config -q` (Debian package docker-compose, no engine needed) is the
validator; scripts/test installs it (WITH_COMPOSE=1). Without the binary that one
test is skipped with the reason, and the static checks below still run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.broker import REPO, shipped_options

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SECRET_KEYS = ("MQTT_INGEST_PASSWORD", "INFLUXDB_ADMIN_PASSWORD", "INFLUXDB_READ_USER_PASSWORD",
               "GRAFANA_ADMIN_PASSWORD")
LONG_RUNNING = ("mosquitto", "influxdb", "ingest", "api", "grafana")

compose_bin = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(
    compose_bin is None,
    reason="docker-compose is not installed (Debian package docker-compose; scripts/test installs it)",
)


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def filled_env_file(tmp_path: Path, **overrides: str) -> Path:
    values = {**env_example(), **{k: f"test-{k.lower()}" for k in SECRET_KEYS}, **overrides}
    path = tmp_path / "test.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items() if v is not None))
    return path


def compose(tmp_path: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess:
    # A clean environment: the caller's variables must not fill in for .env.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run([compose_bin, "--env-file", str(env_file), "-f", str(COMPOSE), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


@needs_compose
def test_compose_file_is_valid(tmp_path):
    result = compose(tmp_path, filled_env_file(tmp_path), "config", "-q")
    assert result.returncode == 0, result.stderr


@needs_compose
@pytest.mark.parametrize("missing", SECRET_KEYS)
def test_compose_refuses_to_run_without_each_secret(tmp_path, missing):
    env_file = filled_env_file(tmp_path, **{missing: ""})
    result = compose(tmp_path, env_file, "config", "-q")
    assert result.returncode != 0
    assert missing in result.stderr


@needs_compose
def test_resolved_config_wires_the_services_together(tmp_path):
    result = compose(tmp_path, filled_env_file(tmp_path), "config")
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    services = cfg["services"]
    ingest = services["ingest"]["environment"]
    assert ingest["CIVICAIR_MQTT_USERNAME"] == "civicair-ingest"
    assert ingest["CIVICAIR_MQTT_PASSWORD"] == "test-mqtt_ingest_password"
    assert services["mosquitto-init"]["environment"]["MQTT_INGEST_PASSWORD"] == "test-mqtt_ingest_password"
    read_user = services["influxdb"]["environment"]["INFLUXDB_READ_USER"]
    assert services["api"]["environment"]["CIVICAIR_INFLUX_USERNAME"] == read_user
    assert services["grafana"]["environment"]["CIVICAIR_GRAFANA_INFLUX_USER"] == read_user
    assert services["ingest"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    # Two ingests on one shared subscription, each with its own account and dead-letter file
    # (docs/delivery.md: safe through a broker restart with confirming bridges).
    second = services["ingest-2"]
    assert second["environment"]["CIVICAIR_MQTT_USERNAME"] == "civicair-ingest-2"
    assert second["environment"]["CIVICAIR_SHARE_GROUP"] == ingest["CIVICAIR_SHARE_GROUP"] == "ingest"
    assert second["environment"]["CIVICAIR_DEADLETTER_PATH"] != ingest["CIVICAIR_DEADLETTER_PATH"]
    assert second["environment"]["CIVICAIR_MQTT_PASSWORD"] == ingest["CIVICAIR_MQTT_PASSWORD"]
    assert second["healthcheck"] == services["ingest"]["healthcheck"]
    assert second["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert "civicair-ingest-2" in services["mosquitto-init"]["command"][0]
    init = services["mosquitto"]["depends_on"]["mosquitto-init"]
    assert init["condition"] == "service_completed_successfully"
    # Raw retention and the rollups' policy, from .env, the same for the worker and the API.
    assert services["rollup"]["environment"]["CIVICAIR_RAW_RETENTION"] == "INF"
    assert services["rollup"]["environment"]["CIVICAIR_ROLLUP_RP"] == services["api"]["environment"][
        "CIVICAIR_ROLLUP_RP"] == ""
    kept = yaml.safe_load(compose(tmp_path, filled_env_file(tmp_path, RAW_RETENTION="400d", ROLLUP_RP="forever"),
                                  "config").stdout)["services"]
    assert kept["rollup"]["environment"]["CIVICAIR_RAW_RETENTION"] == "400d"
    assert kept["rollup"]["environment"]["CIVICAIR_ROLLUP_RP"] == kept["api"]["environment"][
        "CIVICAIR_ROLLUP_RP"] == "forever"


def compose_doc() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_long_running_services_have_healthchecks_and_restart():
    services = compose_doc()["services"]
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], name
        assert services[name].get("restart", "unless-stopped") == "unless-stopped" or "<<" in services[name]


def test_state_lives_in_named_volumes():
    doc = compose_doc()
    declared = set(doc["volumes"])
    assert {"mosquitto-data", "mosquitto-auth", "influxdb-data", "grafana-data"} <= declared
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, f"{name}: {source} is not a declared named volume"


def test_images_are_the_ones_chosen():
    services = compose_doc()["services"]
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["influxdb"]["image"].startswith("influxdb:${INFLUXDB_VERSION:-1.")
    assert services["grafana"]["image"].startswith("grafana/grafana-oss:")
    for ours in ("ingest", "api"):
        assert "build" in {**compose_doc()["x-civicair-image"], **services[ours]}


def test_broker_mounts_the_shipped_config_at_the_paths_it_names():
    mounts = dict(v.split(":")[:2] for v in compose_doc()["services"]["mosquitto"]["volumes"])
    options = shipped_options()
    assert mounts["./deploy/mosquitto/mosquitto.conf"] == "/mosquitto/config/mosquitto.conf"
    assert mounts["./deploy/mosquitto/acl"] == options["acl_file"][0]
    assert options["password_file"][0].startswith(mounts["mosquitto-auth"] + "/")
    assert options["persistence_location"][0].rstrip("/") == mounts["mosquitto-data"]


def test_grafana_mounts_exactly_one_datasource_and_the_built_dashboards():
    grafana = compose_doc()["services"]["grafana"]
    mounts = [v for v in grafana["volumes"] if "/provisioning/datasources/" in v]
    assert len(mounts) == 1
    assert (REPO / mounts[0].split(":")[0]).is_file()
    assert any(v.startswith("./dashboards/json:") for v in grafana["volumes"])
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_nothing_secret_is_committed():
    values = env_example()
    for key in SECRET_KEYS:
        assert values[key] == "", f"{key} must be empty in .env.example"
    text = COMPOSE.read_text()
    for key in SECRET_KEYS:
        # Every secret is required from .env, never defaulted.
        for m in re.finditer(r"\$\{" + key + r"([^}]*)\}", text):
            assert m.group(1).startswith(":?"), m.group(0)
    for name, service in compose_doc()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|TOKEN|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{name}: {key} is not taken from .env"
    ignored = (REPO / ".dockerignore").read_text()
    assert ".env" in ignored and ".git" in ignored


def test_dockerfile_installs_the_server_extra_and_drops_root():
    text = (REPO / "Dockerfile").read_text()
    assert '".[server]"' in text
    assert re.search(r"^USER civicair$", text, re.M)
