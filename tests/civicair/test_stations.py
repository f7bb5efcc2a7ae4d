"""Station onboarding: password hashes the real Mosquitto accepts, registry, revocation.

The broker runs the shipped deploy/mosquitto config (tests/deploy/broker.py); accounts
are made by `civicair station add`, and the bridge config it prints is loaded by the
bridge's own config loader.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from civicair import stations
from civicair.cli import main
from civicair.schema import contract
from civicair.stations import (
    INGEST_ACCOUNT,
    PasswordFile,
    StationError,
    add_station,
    hash_password,
    list_stations,
    revoke_station,
    verify_password,
)
from firmware_bridge import config as bridge_config
from tests.conftest import wait_until
from tests.deploy.broker import SHIPPED_ACL, connect, shipped_broker

HASH_RE = re.compile(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\Z")


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    d = tmp_path / "auth"
    d.mkdir()
    return d


@pytest.fixture
def passwd(auth_dir: Path) -> Path:
    return auth_dir / "passwd"


@pytest.fixture
def broker(tmp_path: Path, passwd: Path):
    # The broker needs its password file to exist before it starts, as in the compose stack.
    pw = PasswordFile(passwd)
    pw.set(INGEST_ACCOUNT, "ingest-pw")
    pw.save()
    server = shipped_broker(tmp_path / "mosquitto", passwd)
    server.start()
    yield server
    server.stop()


def cli_add(capsys, passwd: Path, station: str, *extra: str, port: int = 1883) -> tuple[int, str, str]:
    code = main(["station", "add", station, "--passwd-file", str(passwd), "--mqtt-host", "127.0.0.1",
                 "--mqtt-port", str(port), "--no-tls", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def split_output(out: str) -> tuple[str, str]:
    """The TOML and bridge.env parts of `station add`'s output."""
    parts = re.split(r"^==> .* <==\n", out, flags=re.M)
    assert len(parts) == 3, out
    return parts[1], parts[2]


def password_from(out: str) -> str:
    _, env = split_output(out)
    return env.strip().split("=", 1)[1]


def can_connect(broker, user: str, password: str) -> bool:
    c = connect(broker, user, password, client_id=f"t-{user}")
    c.close()
    return c.connected.is_set()


# -- hashes ----------------------------------------------------------------------------


def test_hash_has_mosquitto_2_format():
    encoded = hash_password("secret")
    assert HASH_RE.match(encoded), encoded
    assert verify_password("secret", encoded)
    assert not verify_password("Secret", encoded)
    assert hash_password("secret") != encoded  # a fresh salt every time


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd not installed")
def test_hash_is_byte_for_byte_what_mosquitto_passwd_writes_for_the_same_salt(tmp_path):
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", "pä$$wörd"], check=True,
                   capture_output=True)
    user, theirs = path.read_text().strip().split(":", 1)
    salt = base64.b64decode(theirs.split("$")[3])
    assert hash_password("pä$$wörd", salt=salt) == theirs
    assert verify_password("pä$$wörd", theirs)


def test_old_sha512_hashes_are_still_read():
    import hashlib

    salt = b"0123456789ab"
    old = "$6$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(
        hashlib.sha512(b"pw" + salt).digest()).decode()
    assert verify_password("pw", old) and not verify_password("px", old)


def test_station_id_pattern_is_the_wire_contracts():
    assert stations.STATION_ID_PATTERN == contract.STATION_ID_PATTERN


# -- against the real broker ------------------------------------------------------------------


def test_added_station_connects_and_publishes_with_the_printed_config(broker, passwd, capsys, tmp_path):
    code, out, err = cli_add(capsys, passwd, "lab-1", "--name", "Lab, Science Park", "--lat", "52.0907",
                             "--lon", "5.1214", port=broker.port)
    assert code == 0, err
    assert "SIGHUP" in err  # the operator is told to reload the broker
    broker.reload()

    toml, env = split_output(out)
    (tmp_path / "bridge.toml").write_text(toml)
    password = password_from(out)
    cfg = bridge_config.load(tmp_path / "bridge.toml", env={"CIVICAIR_MQTT_PASSWORD": password})
    assert (cfg.station, cfg.name, cfg.lat, cfg.lon) == ("lab-1", "Lab, Science Park", 52.0907, 5.1214)
    assert (cfg.mqtt.username, cfg.mqtt.password, cfg.mqtt.port, cfg.mqtt.tls) == ("lab-1", password,
                                                                                   broker.port, False)
    wait_until(lambda: can_connect(broker, cfg.mqtt.username, cfg.mqtt.password), timeout=10,
               message="the broker to accept the new station")

    st = connect(broker, cfg.mqtt.username, cfg.mqtt.password, client_id="b", protocol=mqtt.MQTTv5)
    try:
        reason = st.puback(st.publish(contract.readings_topic("lab-1"), b"{}"))
        assert not reason.is_failure, reason
    finally:
        st.close()
    assert not can_connect(broker, "lab-1", password + "x")


def test_clear_password_is_stored_nowhere(broker, passwd, capsys, tmp_path):
    _, out, _ = cli_add(capsys, passwd, "lab-1", "--name", "Lab")
    password = password_from(out).encode()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert password not in path.read_bytes(), path


def test_inline_password_toml_is_one_loadable_file(passwd, capsys, tmp_path):
    code, out, _ = cli_add(capsys, passwd, "lab-1", "--inline-password")
    assert code == 0 and "==>" not in out
    (tmp_path / "bridge.toml").write_text(out)
    cfg = bridge_config.load(tmp_path / "bridge.toml", env={})
    assert cfg.mqtt.password and PasswordFile(passwd).check("lab-1", cfg.mqtt.password)


def test_tls_is_the_default_in_the_snippet(passwd, capsys, tmp_path):
    main(["station", "add", "lab-1", "--passwd-file", str(passwd), "--mqtt-host", "mqtt.city.example"])
    toml, _ = split_output(capsys.readouterr().out)
    (tmp_path / "b.toml").write_text(toml)
    cfg = bridge_config.load(tmp_path / "b.toml", env={})
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("mqtt.city.example", 8883, True)


def test_revoked_station_is_refused_once_the_broker_reloads(broker, passwd, capsys):
    _, out, _ = cli_add(capsys, passwd, "lab-1")
    broker.reload()
    password = password_from(out)
    wait_until(lambda: can_connect(broker, "lab-1", password), timeout=10, message="accepted")

    assert main(["station", "revoke", "lab-1", "--passwd-file", str(passwd)]) == 0
    assert "SIGHUP" in capsys.readouterr().err
    broker.reload()
    wait_until(lambda: not can_connect(broker, "lab-1", password), timeout=10, message="refused")
    assert can_connect(broker, INGEST_ACCOUNT, "ingest-pw")  # other accounts stay


def test_replace_issues_a_new_password_and_the_old_one_stops_working(broker, passwd, capsys):
    _, out, _ = cli_add(capsys, passwd, "lab-1", "--name", "Lab")
    old = password_from(out)
    code, _, err = cli_add(capsys, passwd, "lab-1")
    assert code == 2 and "--replace" in err
    code, out, _ = cli_add(capsys, passwd, "lab-1", "--replace")
    assert code == 0
    new = password_from(out)
    broker.reload()
    wait_until(lambda: can_connect(broker, "lab-1", new), timeout=10, message="the new password")
    assert not can_connect(broker, "lab-1", old)
    [row] = list_stations(passwd)
    assert row.record.name == "Lab"  # kept from the first add


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd not installed")
def test_file_shared_with_mosquitto_passwd_keeps_both_accounts(tmp_path, passwd, capsys):
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), INGEST_ACCOUNT, "from-the-tool"], check=True,
                   capture_output=True)
    _, out, _ = cli_add(capsys, passwd, "lab-1")
    server = shipped_broker(tmp_path / "m2", passwd)
    with server:
        assert can_connect(server, INGEST_ACCOUNT, "from-the-tool")
        assert can_connect(server, "lab-1", password_from(out))


def test_more_iterations_are_accepted_by_the_broker(tmp_path, passwd):
    pw = PasswordFile(passwd)
    pw.set("lab-1", "pw", iterations=10_000)
    pw.save()
    assert "$7$10000$" in passwd.read_text()
    with shipped_broker(tmp_path / "m", passwd) as server:
        assert can_connect(server, "lab-1", "pw")


# -- files and registry ------------------------------------------------------------------------------


def test_list_shows_each_station_and_its_state(passwd, capsys):
    add_station("lab-1", passwd, name="Lab")
    add_station("park-2", passwd)
    revoke_station("park-2", passwd)
    pw = PasswordFile(passwd)
    pw.set("stray-9", "x")  # made by hand, not through civicair
    pw.set(INGEST_ACCOUNT, "x")
    pw.save()
    assert main(["station", "list", "--passwd-file", str(passwd)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"lab-1\s+active\s+\S+\s+Lab", out)
    assert re.search(r"park-2\s+revoked", out)
    assert re.search(r"stray-9\s+unregistered", out)
    assert INGEST_ACCOUNT not in out


def test_list_json(passwd, capsys):
    add_station("lab-1", passwd, name="Lab", lat=52.1, lon=5.1)
    assert main(["station", "list", "--json", "--passwd-file", str(passwd)]) == 0
    import json

    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == "lab-1" and row["status"] == "active" and row["lat"] == 52.1


def test_new_files_are_private_and_existing_modes_are_kept(passwd, auth_dir):
    add_station("lab-1", passwd)
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    assert stat.S_IMODE((auth_dir / "stations.json").stat().st_mode) == 0o600
    os.chmod(passwd, 0o640)  # e.g. readable by the broker's group
    add_station("park-2", passwd)
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o640


@pytest.mark.parametrize("station, message", [
    ("civicair-ingest", "reserved"), ("civicair-anything", "reserved"), ("Lab-1", "must match"),
    ("-lab", "must match"), ("lab_1", "must match"), ("a" * 64, "must match"),
])
def test_bad_or_reserved_ids_are_refused(passwd, station, message):
    with pytest.raises(StationError, match=message):
        add_station(station, passwd)
    assert not passwd.exists()


def test_coordinates_are_checked(passwd):
    with pytest.raises(StationError, match="latitude"):
        add_station("lab-1", passwd, lat=91, lon=0)


def test_acl_file_must_let_stations_publish(passwd, tmp_path):
    add_station("lab-1", passwd, acl_file=SHIPPED_ACL)
    bad = tmp_path / "acl"
    bad.write_text("user civicair-ingest\ntopic read civicair/v1/+/readings\n")
    with pytest.raises(StationError, match="pattern write civicair/v1/%u/readings"):
        add_station("park-2", passwd, acl_file=bad)


def test_station_add_warns_when_the_acl_does_not_let_stations_read_their_confirmations(passwd, tmp_path, capsys):
    assert stations.acl_lets_stations_read_confirmations(SHIPPED_ACL)
    code, _, err = cli_add(capsys, passwd, "lab-1", "--acl-file", str(SHIPPED_ACL))
    assert code == 0 and "warning" not in err
    old = tmp_path / "acl"
    old.write_text("\n".join(stations.STATION_ACL_PATTERNS) + "\n")  # the ACL shipped before confirmations
    assert not stations.acl_lets_stations_read_confirmations(old)
    code, _, err = cli_add(capsys, passwd, "park-2", "--acl-file", str(old))
    assert code == 0  # readings still flow: the station works, as before confirmations
    assert f"lacks '{stations.STATION_STORED_ACL}'" in err and "docs/delivery.md" in err


def test_missing_passwd_file_option_is_explained(monkeypatch, capsys):
    monkeypatch.delenv("CIVICAIR_PASSWD_FILE", raising=False)
    with pytest.raises(SystemExit, match="--passwd-file"):
        main(["station", "list"])


def test_concurrent_adds_lose_no_account(passwd):
    errors = []

    def add(i):
        try:
            add_station(f"st-{i}", passwd)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(PasswordFile(passwd).entries) == {f"st-{i}" for i in range(12)}
    assert {r.record.id for r in list_stations(passwd)} == {f"st-{i}" for i in range(12)}


def test_revoking_an_unknown_station_says_so(passwd, capsys):
    assert main(["station", "revoke", "nobody", "--passwd-file", str(passwd)]) == 1
    assert "no station" in capsys.readouterr().err
