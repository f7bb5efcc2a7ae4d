"""``civicair bridge doctor``: check a volunteer's setup, one pass/fail line each.

Checks, in the order a volunteer would fix them: the config, each serial port
(exists, readable; the ``dialout`` fix when it is not), that a sensor answers and
which model it looks like, that the broker accepts our credentials, that the
clock is synchronised, and that the spool is healthy. Temperature/humidity companions:
each ``[[climate]]`` table is read once; without any, the I²C buses and IIO devices are
scanned and the tables to add are printed (a companion is optional: never a FAIL then).
"""

from __future__ import annotations

import grp
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from firmware_bridge.climate import discover, iio
from firmware_bridge.climate.base import ClimateError, WrongDevice
from firmware_bridge.climate.i2c import I2cCompanion, open_bus
from firmware_bridge.clock import clock_synced
from firmware_bridge.config import BridgeConfig, ClimateConfig, SensorConfig
from firmware_bridge.sensors import FAMILIES, family
from firmware_bridge.sensors.base import Measurement


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"[{'PASS' if self.ok else 'FAIL'}] {self.name}: {self.detail}"
        return text + (f"\n       fix: {self.fix}" if self.fix and not self.ok else "")


def check_port(sensor: SensorConfig) -> Check:
    name = f"serial {sensor.channel}"
    path = Path(sensor.port)
    if not path.exists():
        hint = ("enable the UART (raspi-config > Interface Options > Serial Port: login shell No, "
                "hardware Yes) and reboot" if "serial" in str(path) or "AMA" in str(path)
                else "check the cable; `ls /dev/serial/by-id/` lists USB adapters")
        return Check(False, name, f"{path} does not exist", hint)
    if not os.access(path, os.R_OK | os.W_OK):
        st = path.stat()
        group = grp.getgrgid(st.st_gid).gr_name
        in_group = st.st_gid in os.getgroups()
        fix = (f"sudo usermod -aG {group} $USER, then log out and in again" if not in_group
               else f"check the permissions of {path}")
        return Check(False, name, f"{path} is not readable and writable by this user (group {group})", fix)
    return Check(True, name, f"{path} exists and is readable")


def check_sensor(sensor: SensorConfig, timeout: float = 6.0) -> Check:
    import serial

    name = f"sensor {sensor.channel}"
    proto = family(sensor.model)
    try:
        port = serial.Serial(sensor.port, proto.BAUD_RATE, timeout=0.2)
    except (serial.SerialException, OSError) as exc:
        return Check(False, name, f"cannot open {sensor.port}: {exc}")
    raw = bytearray()
    measurements: list[Measurement] = []
    parser = proto.Parser(sensor.model)
    try:
        for command in proto.INIT_SEQUENCE:
            port.write(proto.COMMANDS[command])
        poll = proto.POLL
        deadline = time.monotonic() + timeout
        next_poll = 0.0
        while time.monotonic() < deadline and len(measurements) < 2:
            if poll and time.monotonic() >= next_poll:
                port.write(proto.COMMANDS[poll[0]])
                next_poll = time.monotonic() + poll[1]
            data = port.read(256)
            raw += data
            measurements += [e for e in parser.feed(data) if isinstance(e, Measurement)]
    except (serial.SerialException, OSError) as exc:
        return Check(False, name, f"{sensor.port} failed while reading: {exc}",
                     "another program may be reading the port: stop the bridge service first "
                     "(sudo systemctl stop civicair-bridge); else check the cable or USB adapter")
    finally:
        port.close()
    if measurements:
        pm = measurements[-1].values.get("pm25_atm")
        return Check(True, name, f"{sensor.model} answers: {len(measurements)} frames"
                     + (f", PM2.5 {pm:g} µg/m³" if pm is not None else ""))
    guess = _guess_model(bytes(raw), exclude=sensor.model)
    if guess:
        return Check(False, name, f"frames look like {guess}, but the config says {sensor.model}",
                     f"set model = \"{guess}\" in the [[sensor]] table")
    if raw:
        return Check(False, name, f"{len(raw)} bytes in {timeout:.0f} s but no valid {sensor.model} frame",
                     "check TX/RX wiring (sensor TX to Pi RX) and the model; the sensor needs 5 V")
    return Check(False, name, f"no bytes from {sensor.port} in {timeout:.0f} s",
                 "check power (5 V), wiring and that the sensor fan spins")


def _guess_model(data: bytes, exclude: str) -> str | None:
    for model, module in FAMILIES.items():
        if model == exclude or module is family(exclude) and model != exclude:
            continue
        if any(isinstance(e, Measurement) for e in module.Parser(model).feed(data)):
            return model
    return None


def check_broker(cfg: BridgeConfig, timeout: float = 10.0) -> Check:
    import ssl

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    m = cfg.mqtt
    where = f"{m.host}:{m.port}"
    done = threading.Event()
    result: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"civicair-doctor-{cfg.station}")
    if m.username:
        c.username_pw_set(m.username, m.password)
    if m.tls:
        c.tls_set(ca_certs=m.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    c.on_connect = on_connect
    try:
        c.connect(m.host, m.port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return Check(False, "broker", f"cannot reach {where}: {exc}",
                     "check [mqtt] host/port and the network; `ping` the broker host")
    c.loop_start()
    done.wait(timeout)
    c.disconnect()
    c.loop_stop()
    rc = result.get("rc")
    if rc is None:
        return Check(False, "broker", f"{where} did not answer within {timeout:.0f} s")
    if rc.is_failure:
        return Check(False, "broker", f"{where} refused the connection: {rc}",
                     "check [mqtt] username and password (from `civicair station add`)")
    who = f"user {m.username}" if m.username else "anonymous"
    return Check(True, "broker", f"{where} accepted {who}" + (" over TLS" if m.tls else ""))


def check_clock(cfg: BridgeConfig) -> Check:
    if cfg.clock == "trusted":
        return Check(True, "clock", "trusted by configuration (clock = \"trusted\")")
    synced = clock_synced()
    if synced:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return Check(True, "clock", f"synchronised (UTC now {now})")
    detail = "cannot ask the kernel" if synced is None else "not synchronised"
    return Check(False, "clock", f"{detail}; readings will carry synced=false",
                 "sudo timedatectl set-ntp true (or install chrony); the Pi has no clock battery")


def check_spool(cfg: BridgeConfig) -> Check:
    path = Path(cfg.spool_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            status = db.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            waiting = db.execute("SELECT count(*) FROM spool").fetchone()[0] if "spool" in tables else 0
            awaiting = _awaiting_confirmation(db) if "spool" in tables else ""
    except (OSError, sqlite3.Error) as exc:
        return Check(False, "spool", f"{path}: {exc}",
                     f"make {path.parent} writable by this user (sudo chown $USER {path.parent})")
    if status != "ok":
        return Check(False, "spool", f"{path} is damaged: {status}",
                     f"stop the bridge, move {path} aside and start again (its readings are then lost)")
    return Check(True, "spool", f"{path} ok, holds {waiting} readings{awaiting}")


def _awaiting_confirmation(db: sqlite3.Connection) -> str:
    """What the spool says about stored confirmations (docs/delivery.md), for the spool line."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(spool)")}
    if "sent" not in columns:
        return ""  # a spool this bridge version has not opened yet
    row = db.execute("SELECT value FROM state WHERE key = 'confirmed_at'").fetchone()
    if not row:
        return "; the server has not confirmed a stored reading yet (readings leave on the broker's ack)"
    count, oldest = db.execute("SELECT count(*), min(created) FROM spool WHERE sent IS NOT NULL").fetchone()
    last = time.time() - row[0]
    text = f" ({count} of them sent and awaiting the server's stored confirmation"
    if count:
        text += f", the oldest for {_duration(time.time() - oldest)}"
    return text + f"; last confirmation {_duration(last)} ago)"


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


I2C_ENABLE = "sudo raspi-config nonint do_i2c 0, then reboot (docs/raspberry-pi.md)"


@dataclass(frozen=True, slots=True)
class ClimateEnv:
    """Where the companions are looked for: real paths and smbus2 unless a test says otherwise."""

    dev_root: Path = Path("/dev")
    iio_root: Path = iio.IIO_ROOT
    opener: Callable[[int], Any] = open_bus
    read_text: Callable[[Path], str] = iio._read_text
    sleep: Callable[[float], None] = time.sleep


def check_companion(c: ClimateConfig, env: ClimateEnv) -> Check:
    """Read a configured companion once."""
    if c.kind == "iio":
        name = f"climate {c.device}"
        reader = iio.IioReader(str(c.device), model=c.source, root=env.iio_root, read_text=env.read_text,
                               sleep=env.sleep)
        sample = reader.read()
        if sample is None:
            fix = ("for a DHT22: add dtoverlay=dht11,gpiopin=4 to /boot/firmware/config.txt and reboot; "
                   "check its wiring (data pin, 3V3, a 10 kΩ pull-up)")
            return Check(False, name, f"no reading: {reader.last_error}", fix)
        retried = f" after {reader.retried} retries" if reader.retried else ""
        return Check(True, name, f"{c.source}: {discover.describe(sample)}{retried}")
    assert c.bus is not None and c.address is not None
    name = f"climate {c.kind}"
    if c.simulate:  # what the bridge reads then: a simulated part, not /dev/i2c-N
        from firmware_bridge.climate.reader import CompanionReader

        companion_reader = CompanionReader(c, threading.Event())
        simulated = companion_reader.read_once()
        if simulated is None:
            errors = companion_reader.stats()["errors"]
            return Check(False, name, f"simulated {c.kind} gave no reading: {errors}")
        return Check(True, name, f"simulated {c.source} (simulate = true: not a real part; for tests "
                     f"and the local stack): {discover.describe(simulated)}")
    node = env.dev_root / f"i2c-{c.bus}"
    if not node.exists():
        return Check(False, name, f"{node} does not exist: I²C is off", I2C_ENABLE)
    if not os.access(node, os.R_OK | os.W_OK):
        return Check(False, name, f"{node} is not readable and writable by this user",
                     "sudo usermod -aG i2c $USER (and the service user: sudo usermod -aG i2c civicair)")
    where = f"{c.address:#04x} on {node}"
    try:
        bus = env.opener(c.bus)
    except OSError as exc:
        return Check(False, name, f"cannot open {node}: {exc}", I2C_ENABLE)
    try:
        companion = I2cCompanion(c.kind, bus, c.address, sleep=env.sleep)
        try:
            companion.start()
            sample = companion.read()
        except WrongDevice as exc:
            return Check(False, name, f"{where}: {exc}", "set kind to the part you have, or replace it")
        except ClimateError as exc:
            return Check(False, name, f"{where}: {exc}",
                         f"check wiring (3V3, GND, SDA GPIO2, SCL GPIO3) and `i2cdetect -y {c.bus}`")
    finally:
        close = getattr(bus, "close", None)
        if close is not None:
            close()
    if sample is None:
        return Check(False, name, f"{where} answered but gave no valid reading: {companion.last_error}",
                     "check the wiring and power (3V3) of the sensor")
    return Check(True, name, f"{where}: {discover.describe(sample)}")


def check_climate(cfg: BridgeConfig, env: ClimateEnv | None = None) -> list[Check]:
    """The configured companions, each read once; or, with none, what a scan finds."""
    env = env or ClimateEnv()
    if cfg.climate:
        return [check_companion(c, env) for c in cfg.climate]
    buses, found = discover.scan_i2c(env.dev_root, env.opener, env.sleep)
    found += discover.scan_iio(env.iio_root, env.read_text, env.sleep)
    if not found:
        where = (f"nothing answers on {', '.join(f'/dev/i2c-{b}' for b in buses)}" if buses
                 else f"no I²C bus; to enable it: {I2C_ENABLE}")
        return [Check(True, "climate", f"no temperature/humidity companion configured or found: {where}; "
                      "no IIO humidity device. Optional, but without one a PMS5003 or SDS011 "
                      "publishes humidity-uncorrected PM2.5 (docs/climate.md)")]
    checks = []
    for hit in found:
        if hit.usable:
            paste = "\n".join("       " + line for line in hit.toml().splitlines())
            detail = f"found {hit.detail}; to use it, add to bridge.toml:\n{paste}"
            checks.append(Check(True, "climate", detail))
        else:
            checks.append(Check(True, "climate", f"found {hit.detail}"))
    return checks


def run(cfg: BridgeConfig, out: TextIO, sensor_timeout: float = 6.0) -> int:
    checks = [Check(True, "config", f"station {cfg.station}, {len(cfg.sensors)} sensor(s), "
                    f"broker {cfg.mqtt.host}:{cfg.mqtt.port}")]
    print(checks[0].line(), file=out, flush=True)
    for sensor in cfg.sensors:
        port = check_port(sensor)
        checks.append(port)
        print(port.line(), file=out, flush=True)
        if port.ok:
            checks.append(check_sensor(sensor, sensor_timeout))
            print(checks[-1].line(), file=out, flush=True)
    for companion in check_climate(cfg):
        checks.append(companion)
        print(companion.line(), file=out, flush=True)
    for check in (check_broker, check_clock, check_spool):
        checks.append(check(cfg))
        print(checks[-1].line(), file=out, flush=True)
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed", file=out, flush=True)
    return 1 if failed else 0
