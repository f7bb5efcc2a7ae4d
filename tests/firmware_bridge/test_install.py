"""``civicair bridge install``: a station set up as a service in one command.

The tests install under a temp root (``--root``): the same files with the same modes,
but no user is created and nothing is started, so the machine running them is left
alone. The doctor runs for real: a simulated sensor on a pty and the real broker.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from civicair import stations
from firmware_bridge import config, install
from firmware_bridge.simulator import PtySimulator

EXECUTABLE = "/opt/venvs/civicair/bin/civicair"


def write_config(tmp_path: Path, *, broker_port: int = 8883, serial: str = "/dev/serial0",
                 extra: str = "", mqtt_extra: str = 'username = "lab-7"\ntls = true') -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(f"""# from the operator
station = "lab-7"
clock = "trusted"
{extra}
[mqtt]
host = "127.0.0.1"
port = {broker_port}
{mqtt_extra}

[[sensor]]
port = "{serial}"
model = "pms5003"
channel = "a"
""")
    return path


def run_install(tmp_path: Path, cfg: Path, *, env_file: Path | None = None, doctor: bool = False,
                environ: dict[str, str] | None = None, capsys=None) -> tuple[int, str, Path]:
    root = tmp_path / "root"
    code = install.install(cfg, env_file=env_file, root=root, doctor=doctor, environ=environ or {},
                           executable=EXECUTABLE)
    out = capsys.readouterr().out if capsys else ""
    return code, out, root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.env"
    path.write_text("# from `civicair station add`\nCIVICAIR_MQTT_PASSWORD=correct-horse-battery\n")
    return path


def test_install_puts_config_password_and_unit_in_place_with_their_modes(tmp_path, env_file, capsys):
    cfg = write_config(tmp_path)
    code, out, root = run_install(tmp_path, cfg, env_file=env_file, capsys=capsys)
    assert code == 0, out
    toml, env, unit = (root / "etc/civicair/bridge.toml", root / "etc/civicair/bridge.env",
                       root / "etc/systemd/system/civicair-bridge.service")
    assert toml.read_text() == cfg.read_text() and mode(toml) == 0o644
    assert env.read_text() == "CIVICAIR_MQTT_PASSWORD=correct-horse-battery\n" and mode(env) == 0o600
    assert "correct-horse-battery" not in toml.read_text()
    shipped = resources.files("firmware_bridge").joinpath("data/civicair-bridge.service").read_text()
    assert unit.read_text() == shipped.replace("/opt/civicair/bin/civicair", EXECUTABLE)
    assert f"ExecStart={EXECUTABLE} bridge --config /etc/civicair/bridge.toml" in unit.read_text()
    assert (root / "var/lib/civicair").is_dir()
    assert "wrote /etc/civicair/bridge.env (mode 600)" in out
    assert "sudo systemctl enable civicair-bridge" in out and "journalctl -u civicair-bridge" in out
    # What the service will read back is what the operator issued.
    loaded = config.load(toml, env=install.parse_env(env.read_text()))
    assert (loaded.station, loaded.mqtt.username, loaded.mqtt.password) == ("lab-7", "lab-7",
                                                                            "correct-horse-battery")


def test_a_second_install_changes_nothing_and_says_so(tmp_path, env_file, capsys):
    cfg = write_config(tmp_path)
    run_install(tmp_path, cfg, env_file=env_file, capsys=capsys)
    root = tmp_path / "root"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    code, out, _ = run_install(tmp_path, cfg, capsys=capsys)  # no --env: the installed password is kept
    assert code == 0, out
    assert out.count("unchanged ") == 3 and "wrote" not in out and "updated" not in out
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    assert "systemctl start civicair-bridge" in out  # nothing changed: start, not restart


def test_an_edited_config_is_updated_and_the_service_restarted(tmp_path, env_file, capsys):
    cfg = write_config(tmp_path)
    run_install(tmp_path, cfg, env_file=env_file, capsys=capsys)
    cfg.write_text(cfg.read_text().replace('model = "pms5003"', 'model = "pms7003"'))
    code, out, root = run_install(tmp_path, cfg, capsys=capsys)
    assert code == 0, out
    assert "updated /etc/civicair/bridge.toml" in out and "unchanged /etc/civicair/bridge.env" in out
    assert "systemctl restart civicair-bridge" in out
    assert 'model = "pms7003"' in (root / "etc/civicair/bridge.toml").read_text()


def test_the_password_can_come_from_the_environment(tmp_path, capsys):
    code, out, root = run_install(tmp_path, write_config(tmp_path),
                                  environ={"CIVICAIR_MQTT_PASSWORD": "from-env"}, capsys=capsys)
    assert code == 0, out
    assert (root / "etc/civicair/bridge.env").read_text() == "CIVICAIR_MQTT_PASSWORD=from-env\n"


def test_a_config_holding_its_password_is_readable_by_the_service_group_only(tmp_path, capsys):
    cfg = write_config(tmp_path, mqtt_extra='username = "lab-7"\npassword = "inline-secret"')
    code, out, root = run_install(tmp_path, cfg, capsys=capsys)
    assert code == 0, out
    assert mode(root / "etc/civicair/bridge.toml") == 0o640
    assert not (root / "etc/civicair/bridge.env").exists()


def test_a_station_without_credentials_needs_no_password(tmp_path, capsys):
    code, out, root = run_install(tmp_path, write_config(tmp_path, mqtt_extra=""), capsys=capsys)
    assert code == 0, out
    assert not (root / "etc/civicair/bridge.env").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('station = "lab-7"', 'station = "Lab 7"'), "station"),
    (lambda t: t + "\n[[sensor\n", "config"),
    (lambda t: t.replace('model = "pms5003"', 'model = "pms9999"'), "pms9999"),
    (lambda t: t + '\n[spool]\npath = "/home/pi/spool.sqlite3"\n', "outside /var/lib/civicair"),
    (lambda t: t.replace("[mqtt]", "[mqtt]\nqos = 2"), "qos"),
], ids=["bad station id", "broken TOML", "unknown sensor model", "spool outside the state dir",
        "unknown mqtt key"])
def test_a_bad_config_is_refused_with_a_reason_and_nothing_is_written(tmp_path, env_file, capsys, edit,
                                                                      message):
    cfg = write_config(tmp_path)
    cfg.write_text(edit(cfg.read_text()))
    code, out, root = run_install(tmp_path, cfg, env_file=env_file, capsys=capsys)
    assert code == 2
    assert message in out and "nothing was written" in out
    assert not root.exists()


def test_credentials_without_a_password_are_refused_with_the_fix(tmp_path, capsys):
    code, out, root = run_install(tmp_path, write_config(tmp_path), capsys=capsys)
    assert code == 2 and not root.exists()
    assert "no password was given: pass --env bridge.env" in out


def test_an_env_file_without_the_password_line_is_refused(tmp_path, capsys):
    bad = tmp_path / "bridge.env"
    bad.write_text("CIVICAIR_MQTT_HOST=x\n")
    code, out, root = run_install(tmp_path, write_config(tmp_path), env_file=bad, capsys=capsys)
    assert code == 2 and "has no CIVICAIR_MQTT_PASSWORD" in out and not root.exists()


def test_env_lines_are_read_as_systemd_reads_them():
    assert install.parse_env("# c\n; c\n\nA=1\nB = 'two words'\nC=\"x=y\"\nnot a line\n") == {
        "A": "1", "B": "two words", "C": "x=y"}


def test_what_station_add_prints_installs_as_it_is(tmp_path, capsys):
    """The operator's side and the volunteer's side meet: the snippet and the env line of
    `civicair station add` are exactly what the installer takes."""
    new = stations.add_station("oak-street-3", tmp_path / "passwd", name="Oak Street 3", lat=52.51, lon=13.39)
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(stations.bridge_snippet(new, "mqtt.city.example", 8883))
    env = tmp_path / "bridge.env"
    env.write_text(stations.bridge_env(new))
    code, out, root = run_install(tmp_path, cfg, env_file=env, capsys=capsys)
    assert code == 0, out
    loaded = config.load(root / "etc/civicair/bridge.toml",
                         env=install.parse_env((root / "etc/civicair/bridge.env").read_text()))
    assert loaded.mqtt.password == new.password and loaded.station == "oak-street-3"
    assert stations.PasswordFile(tmp_path / "passwd").check("oak-street-3", loaded.mqtt.password)


def test_install_runs_doctor_and_starts_nothing_when_a_check_fails(tmp_path, mosquitto, capsys):
    cfg = write_config(tmp_path, broker_port=mosquitto.port, serial="/dev/serial9", mqtt_extra="")
    code, out, root = run_install(tmp_path, cfg, doctor=True, capsys=capsys)
    assert code == 1
    assert "[FAIL] serial a: /dev/serial9 does not exist" in out
    assert "not started: fix what failed above" in out and "to start it" not in out
    assert (root / "etc/civicair/bridge.toml").is_file()  # in place for the next try


def test_install_with_a_sensor_and_a_broker_passes_doctor(tmp_path, mosquitto, capsys):
    sim = PtySimulator("pms5003", rate_hz=5, values={"pm25_atm": 11, "n0_3": 400})
    sim.start()
    try:
        cfg = write_config(tmp_path, broker_port=mosquitto.port, serial=sim.path,
                           mqtt_extra='username = "lab-7"')
        code, out, root = run_install(tmp_path, cfg, doctor=True,
                                      environ={"CIVICAIR_MQTT_PASSWORD": "pw"}, capsys=capsys)
    finally:
        sim.close()
    assert code == 0, out
    assert "[PASS] sensor a: pms5003 answers" in out and "[PASS] broker:" in out and "0 failed" in out
    assert (root / "var/lib/civicair/spool.sqlite3").is_file()  # doctor's spool check, under the root


def test_the_command_line_install(tmp_path, env_file):
    cfg = write_config(tmp_path)
    root = tmp_path / "root"
    done = subprocess.run([sys.executable, "-m", "civicair", "bridge", "install", "--config", str(cfg),
                           "--env", str(env_file), "--root", str(root), "--skip-doctor"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote /etc/civicair/bridge.toml" in done.stdout
    unit = (root / "etc/systemd/system/civicair-bridge.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    command = exec_start.removeprefix("ExecStart=").split()[0]
    assert os.access(command, os.X_OK) and Path(command).name == "civicair"

    missing = subprocess.run([sys.executable, "-m", "civicair", "bridge", "install"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "give --config FILE" in missing.stderr


def test_the_service_keeps_its_own_group_so_a_private_config_stays_readable():
    """Group=dialout would make dialout the only group (systemd's initgroups with that gid),
    and the 0640 root:civicair config holding a password would be unreadable."""
    unit = resources.files("firmware_bridge").joinpath("data/civicair-bridge.service").read_text()
    settings = [line for line in unit.splitlines() if not line.startswith("#")]
    assert "User=civicair" in settings and "SupplementaryGroups=dialout" in settings
    assert not [line for line in settings if line.startswith("Group=")]


def test_an_i2c_companion_puts_the_service_user_in_group_i2c(tmp_path, env_file, capsys):
    """/dev/i2c-1 is root:i2c 0660 on Raspberry Pi OS: without the group, the BME280 beside
    the PMS5003 would be unreadable to the service and every reading uncorrected."""
    i2c = write_config(tmp_path, extra='[[climate]]\nkind = "bme280"\nbus = 1\n')
    code, out, root = run_install(tmp_path, i2c, env_file=env_file, capsys=capsys)
    assert code == 0, out
    unit = (root / "etc/systemd/system/civicair-bridge.service").read_text().splitlines()
    assert "SupplementaryGroups=dialout i2c" in unit

    iio = write_config(tmp_path, extra='[[climate]]\nkind = "iio"\ndevice = "dht11"\nmodel = "dht22"\n')
    code, out, root = run_install(tmp_path, iio, env_file=env_file, capsys=capsys)
    assert code == 0, out
    unit = (root / "etc/systemd/system/civicair-bridge.service").read_text().splitlines()
    assert "SupplementaryGroups=dialout" in unit  # IIO sysfs files are world-readable


def test_a_missing_group_is_explained_before_anything_runs(monkeypatch):
    calls: list[list[str]] = []

    def run(argv: list[str], check: bool = False) -> subprocess.CompletedProcess:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0)

    with pytest.raises(install.InstallError, match=r"group no-such-group-7 does not exist"):
        install.ensure_user(print, run, ("dialout", "no-such-group-7"))
    real = install.grp.getgrnam

    def without_i2c(name: str):  # a Pi where I²C was never enabled
        if name == "i2c":
            raise KeyError(name)
        return real(name)

    monkeypatch.setattr(install.grp, "getgrnam", without_i2c)
    with pytest.raises(install.InstallError, match=r"raspi-config nonint do_i2c 0"):
        install.ensure_user(print, run, ("dialout", "i2c"))
    assert calls == []  # no useradd or usermod before the groups are known to exist


def test_a_password_moved_into_the_config_replaces_the_installed_env(tmp_path, env_file, capsys):
    run_install(tmp_path, write_config(tmp_path), env_file=env_file, capsys=capsys)
    rotated = write_config(tmp_path, mqtt_extra='username = "lab-7"\npassword = "new-pass-2"')
    code, out, root = run_install(tmp_path, rotated, capsys=capsys)
    assert code == 0, out
    assert "removed /etc/civicair/bridge.env (the config holds the password now)" in out
    assert not (root / "etc/civicair/bridge.env").exists()
    assert config.load(root / "etc/civicair/bridge.toml", env={}).mqtt.password == "new-pass-2"


@pytest.mark.parametrize("password", ["has space", 'quo"te', "back\\slash", "tab\there", "new\nline"])
def test_a_password_systemd_would_alter_is_refused(tmp_path, capsys, password):
    code, out, root = run_install(tmp_path, write_config(tmp_path),
                                  environ={"CIVICAIR_MQTT_PASSWORD": password}, capsys=capsys)
    assert code == 2 and "no spaces, quotes, backslashes" in out and not root.exists()


def test_an_executable_path_a_unit_would_misread_is_refused(tmp_path, env_file, capsys):
    root = tmp_path / "root"
    code = install.install(write_config(tmp_path), env_file=env_file, root=root, doctor=False,
                           environ={}, executable="/opt/my venv/bin/civicair")
    assert code == 2 and "a systemd unit would misread" in capsys.readouterr().out and not root.exists()


def test_a_file_is_replaced_not_written_through_a_symlink(tmp_path, env_file, capsys):
    root = tmp_path / "root"
    (root / "etc/civicair").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me\n")
    (root / "etc/civicair/bridge.env").symlink_to(elsewhere)
    code, out, _ = run_install(tmp_path, write_config(tmp_path), env_file=env_file, capsys=capsys)
    assert code == 0, out
    assert elsewhere.read_text() == "keep me\n"
    env = root / "etc/civicair/bridge.env"
    assert not env.is_symlink() and mode(env) == 0o600
    assert not [p for p in (root / "etc/civicair").iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze (Debian package systemd)")
def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path, env_file):
    executable = shutil.which("true")
    root = tmp_path / "root"
    assert install.install(write_config(tmp_path), env_file=env_file, root=root, doctor=False, environ={},
                           executable=executable, out=open(os.devnull, "w")) == 0
    unit = root / "etc/systemd/system/civicair-bridge.service"
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
