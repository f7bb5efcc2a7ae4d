"""``civicair bridge doctor``: a clear pass/fail line per check, with the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import tty

from civicair.services import free_port
from firmware_bridge.simulator import PtySimulator


def doctor(tmp_path, port: str, broker_port: int, model: str = "pms5003", clock: str = "trusted"):
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(f"""
station = "doc-1"
clock = "{clock}"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
[[sensor]]
port = "{port}"
model = "{model}"
[spool]
path = "{tmp_path / 'spool.sqlite3'}"
""")
    proc = subprocess.run([sys.executable, "-m", "civicair", "bridge", "doctor", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def test_all_checks_pass_with_a_sensor_and_a_broker(tmp_path, mosquitto):
    sim = PtySimulator("pms5003", rate_hz=5, values={"pm25_atm": 11, "n0_3": 400})
    sim.start()
    try:
        code, out = doctor(tmp_path, sim.path, mosquitto.port)
    finally:
        sim.close()
    assert code == 0, out
    assert "[PASS] sensor a: pms5003 answers" in out and "PM2.5 11 µg/m³" in out
    assert "[PASS] broker: 127.0.0.1" in out and "[PASS] spool:" in out and "[PASS] clock:" in out
    assert "0 failed" in out


def test_missing_port_and_unreachable_broker_fail_with_fixes(tmp_path):
    code, out = doctor(tmp_path, "/dev/serial9", free_port())
    assert code == 1
    assert "[FAIL] serial a: /dev/serial9 does not exist" in out and "fix: enable the UART" in out
    assert "[FAIL] broker: cannot reach" in out


def test_silent_port_says_no_bytes(tmp_path, mosquitto):
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        code, out = doctor(tmp_path, os.ttyname(slave), mosquitto.port)
    finally:
        os.close(master)
        os.close(slave)
    assert code == 1
    assert "[FAIL] sensor a: no bytes from" in out and "fix: check power" in out


def test_spool_line_reports_readings_awaiting_a_stored_confirmation(tmp_path):
    import json
    import time

    from firmware_bridge import config as bridge_config
    from firmware_bridge.doctor import check_spool
    from firmware_bridge.spool import Spool

    cfg = bridge_config.load_text(f'station = "doc-1"\n[[sensor]]\nport = "/dev/x"\n[spool]\n'
                                  f'path = "{tmp_path / "spool.sqlite3"}"\n', env={})
    spool = Spool(cfg.spool_path)
    ids = [spool.put("t", json.dumps({"channel": "a", "boot": 1, "seq": i}).encode(), now=time.time() - 600)
           for i in range(3)]
    check = check_spool(cfg)
    assert check.ok and "holds 3 readings" in check.detail
    assert "has not confirmed a stored reading yet" in check.detail
    spool.confirm({("b", 1): [(0, 0)]}, now=time.time() - 3600)
    spool.published(ids[:2])
    spool.close()
    check = check_spool(cfg)
    assert check.ok, check
    assert "2 of them sent and awaiting the server's stored confirmation, the oldest for 10 min" in check.detail
    assert "last confirmation 60 min ago" in check.detail


def test_a_port_that_fails_mid_read_is_a_failed_check_not_a_traceback():
    """The other end goes away while doctor reads (a USB adapter pulled, or the running
    bridge holding the same port): pyserial raises; doctor reports it as a FAIL line."""
    import threading

    from firmware_bridge import doctor
    from firmware_bridge.config import SensorConfig

    master, slave = os.openpty()
    path = os.ttyname(slave)
    closer = threading.Timer(0.5, os.close, (master,))
    closer.start()
    try:
        check = doctor.check_sensor(SensorConfig(path, "pms5003", "a"), timeout=5)
    finally:
        closer.join()
        os.close(slave)
    assert not check.ok and check.name == "sensor a" and "failed while reading" in check.detail, check
    assert "systemctl stop civicair-bridge" in check.fix
