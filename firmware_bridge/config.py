"""Bridge configuration: one TOML file, overridden by CIVICAIR_* environment variables.

Standard library only (the Pi installs just pyserial and paho-mqtt). See
``firmware_bridge/bridge.example.toml`` for the commented file a volunteer edits.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_bridge import contract
from firmware_bridge.errors import ConfigError
from firmware_bridge.publisher import MqttSettings


@dataclass(frozen=True, slots=True)
class SensorConfig:
    port: str
    model: str = "pms5003"
    channel: str = "a"


@dataclass(frozen=True, slots=True)
class ClimateConfig:
    """A temperature/humidity companion (``[[climate]]``): an I²C part or an IIO device."""

    kind: str  # bme280 sht3x sht4x htu21d si7021 iio
    bus: int | None = None  # I²C: /dev/i2c-<bus>; 1 on a Raspberry Pi
    address: int | None = None  # I²C: 7-bit address; the part's usual one when omitted
    device: str | None = None  # IIO: "iio:deviceN" or the device's name ("dht11")
    #: What the readings say they came from: the kind for I²C parts; for IIO the sensor
    #: behind the driver ("dht22" behind the dht11 driver), default the device name.
    model: str | None = None
    interval: float = 2.0  # seconds between reads (the DHT22 answers at most every 2 s)
    #: A simulated part on a simulated bus (the local stack's stations); never on a Pi.
    simulate: bool = False

    @property
    def source(self) -> str:
        return self.model or (self.kind if self.kind != "iio" else str(self.device))


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    station: str
    sensors: tuple[SensorConfig, ...]
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    window_s: int = 60
    warmup_s: float = 30.0
    #: Duty cycle: measure one window every ``duty_period_s`` and let the sensor
    #: sleep in between (laser life). 0: always on.
    duty_period_s: int = 0
    spool_path: str = "/var/lib/civicair/spool.sqlite3"  # DEFAULT_SPOOL
    spool_max_rows: int = 500_000
    spool_max_age_days: float = 30.0
    #: Delete a reading when the ingest confirms it stored (once it has shown it does);
    #: False: on the broker's PUBACK, as bridges did before confirmations (docs/delivery.md).
    spool_confirmations: bool = True
    #: A reading sent and not confirmed is sent again after this, then twice as long … [s]
    spool_resend_after_s: float = 300.0
    #: … up to this [s].
    spool_resend_max_s: float = 3600.0
    #: "auto": ask the kernel whether NTP synchronised the clock; "trusted": always synced.
    clock: str = "auto"
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    #: Temperature/humidity companions, in the order given: a reading takes ``rh`` and
    #: ``temp`` from the first one with a value for its window (docs/climate.md).
    climate: tuple[ClimateConfig, ...] = ()

    def meta(self, software: str) -> dict[str, Any]:
        return {
            "name": self.name or self.station,
            "lat": self.lat,
            "lon": self.lon,
            "sensors": {s.channel: s.model for s in self.sensors},
            "window": self.window_s,
            "duty_period": self.duty_period_s,
            "software": software,
        }


_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "CIVICAIR_STATION": ("station", str),
    "CIVICAIR_MQTT_HOST": ("mqtt.host", str),
    "CIVICAIR_MQTT_PORT": ("mqtt.port", int),
    "CIVICAIR_MQTT_USERNAME": ("mqtt.username", str),
    "CIVICAIR_MQTT_PASSWORD": ("mqtt.password", str),
    "CIVICAIR_MQTT_TLS": ("mqtt.tls", lambda v: v.lower() in ("1", "true", "yes")),
    "CIVICAIR_SPOOL_PATH": ("spool.path", str),
    "CIVICAIR_SPOOL_CONFIRMATIONS": ("spool.confirmations", lambda v: v.lower() in ("1", "true", "yes")),
    "CIVICAIR_SPOOL_RESEND_AFTER": ("spool.resend_after", float),
    "CIVICAIR_SPOOL_RESEND_MAX": ("spool.resend_max", float),
}


DEFAULT_SPOOL = "/var/lib/civicair/spool.sqlite3"


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping):
            base_table = out.get(key)
            out[key] = _merge(base_table if isinstance(base_table, dict) else {}, value)
        elif value is not None:
            out[key] = value
    return out


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None,
         cli: Mapping[str, Any] | None = None) -> BridgeConfig:
    """Read the TOML file (if any), then environment variables, then ``cli``.

    ``cli`` has the TOML file's shape (``{"mqtt": {"host": …}, "sensor": […]}``);
    its ``None`` values are ignored.
    """
    text = None
    if path is not None:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
    return load_text(text, env, cli, source=f"config file {path}")


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def has_inline_password(text: str) -> bool:
    """Whether the TOML itself holds ``[mqtt] password``."""
    mqtt = _parse(text, "config").get("mqtt")
    return isinstance(mqtt, dict) and "password" in mqtt


def load_text(text: str | None, env: Mapping[str, str] | None = None, cli: Mapping[str, Any] | None = None,
              source: str = "config") -> BridgeConfig:
    """:func:`load` for TOML text already read (or None)."""
    raw: dict[str, Any] = _parse(text, source) if text is not None else {}
    env = os.environ if env is None else env
    for var, (dotted, cast) in _ENV.items():
        if var in env:
            section, _, key = dotted.rpartition(".")
            target = raw.setdefault(section, {}) if section else raw
            try:
                target[key] = cast(env[var])
            except ValueError:
                raise ConfigError(f"{var}={env[var]!r} is not valid") from None
    return _build(_merge(raw, cli or {}))


def _build(raw: dict[str, Any]) -> BridgeConfig:
    try:
        mqtt_raw = dict(raw.get("mqtt", {}))
        spool = raw.get("spool", {})
        sampling = raw.get("sampling", {})
        sensors = tuple(SensorConfig(**s) for s in raw.get("sensor", []))
        climate_raw = raw.get("climate", [])
        if not isinstance(climate_raw, list):
            raise ConfigError("climate: write each companion as a [[climate]] table (two brackets)")
        climate = tuple(_climate(i, c) for i, c in enumerate(climate_raw, 1))
        cfg = BridgeConfig(
            station=raw.get("station", ""),
            sensors=sensors,
            mqtt=MqttSettings(**mqtt_raw),
            window_s=int(sampling.get("window", 60)),
            warmup_s=float(sampling.get("warmup", 30)),
            duty_period_s=int(sampling.get("duty_period", 0)),
            spool_path=str(spool.get("path", DEFAULT_SPOOL)),
            spool_max_rows=int(spool.get("max_rows", 500_000)),
            spool_max_age_days=float(spool.get("max_age_days", 30)),
            spool_confirmations=_flag(spool.get("confirmations", True), "spool.confirmations"),
            spool_resend_after_s=float(spool.get("resend_after", 300)),
            spool_resend_max_s=float(spool.get("resend_max", 3600)),
            clock=str(raw.get("clock", "auto")),
            name=raw.get("name"),
            lat=raw.get("lat"),
            lon=raw.get("lon"),
            climate=climate,
        )
    except (TypeError, ValueError) as exc:  # unknown key in a table, or a wrong type
        raise ConfigError(f"config: {exc}") from None
    return validate(cfg)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


_CLIMATE_KEYS = {"kind", "bus", "address", "device", "model", "interval", "simulate"}
_MODEL_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def _climate(index: int, raw: Any) -> ClimateConfig:
    """One ``[[climate]]`` table, checked; ConfigError names the table and the fix."""
    from firmware_bridge.climate import I2C_FAMILIES, KINDS

    where = f"[[climate]] #{index}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table (kind = ..., bus = ..., address = ...)")
    unknown = set(raw) - _CLIMATE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(_CLIMATE_KEYS))}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind {kind!r} unsupported; one of {', '.join(KINDS)}")
    where = f"{where} ({kind})"
    interval = raw.get("interval", 2.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 1 <= interval <= 3600:
        raise ConfigError(f"{where}: interval must be a number of seconds, 1 to 3600; got {interval!r}")
    model = raw.get("model")
    if model is not None and (not isinstance(model, str) or not _MODEL_RE.fullmatch(model)):
        raise ConfigError(f"{where}: model must be a short lower-case name such as \"dht22\"; got {model!r}")
    simulate = raw.get("simulate", False)
    if not isinstance(simulate, bool):
        raise ConfigError(f"{where}: simulate must be true or false; got {simulate!r}")
    if kind == "iio":
        if simulate:
            raise ConfigError(f"{where}: simulate is for I²C kinds (bme280, sht3x, …); "
                              "an IIO device cannot be simulated")
        device = raw.get("device")
        if not isinstance(device, str) or not device.strip():
            raise ConfigError(f"{where}: give device = \"iio:deviceN\" or the IIO device's name "
                              "(cat /sys/bus/iio/devices/*/name; \"dht11\" for a DHT11/DHT22)")
        for key in ("bus", "address"):
            if key in raw:
                raise ConfigError(f"{where}: {key} is for I²C kinds; an IIO device is chosen by device = ...")
        return ClimateConfig(kind=kind, device=device.strip(), model=model, interval=float(interval))
    if "device" in raw:
        raise ConfigError(f"{where}: device is for kind = \"iio\"; an I²C part is chosen by bus and address")
    bus = raw.get("bus", 1)
    if isinstance(bus, bool) or not isinstance(bus, int) or bus < 0:
        raise ConfigError(f"{where}: bus must be the number N of /dev/i2c-N (1 on a Raspberry Pi); "
                          f"got {bus!r}")
    allowed = I2C_FAMILIES[kind].ADDRESSES
    address = raw.get("address", allowed[0])
    if isinstance(address, str):
        try:
            address = int(address, 0)
        except ValueError:
            raise ConfigError(f"{where}: address {address!r} is not a number (write it as 0x76)") from None
    if isinstance(address, bool) or not isinstance(address, int) or address not in allowed:
        shown = f"{address:#04x}" if isinstance(address, int) else repr(address)
        raise ConfigError(f"{where}: address {shown} is not one a {kind} can have; "
                          f"use {' or '.join(hex(a) for a in allowed)} (`i2cdetect -y {bus}` shows it)")
    return ClimateConfig(kind=kind, bus=bus, address=address, model=model, interval=float(interval),
                         simulate=simulate)


def validate(cfg: BridgeConfig) -> BridgeConfig:
    from firmware_bridge.sensors import FAMILIES

    if not cfg.station:
        raise ConfigError("no station id: give --config FILE (the bridge.toml from `civicair station add`), "
                          "or --station ID and --port PORT, or CIVICAIR_STATION")
    if not contract.is_station_id(cfg.station):
        raise ConfigError(
            f"station id {cfg.station!r} must match {contract.STATION_ID_PATTERN} "
            "(lower-case letters, digits and '-')"
        )
    if not cfg.sensors:
        raise ConfigError("no [[sensor]] configured: give at least one port and model")
    channels = [s.channel for s in cfg.sensors]
    if len(set(channels)) != len(channels) or not set(channels) <= set(contract.CHANNELS):
        raise ConfigError(f"sensor channels must be distinct, 'a' or 'b'; got {channels}")
    for s in cfg.sensors:
        if s.model not in FAMILIES:
            raise ConfigError(f"sensor model {s.model!r} unsupported; one of {', '.join(FAMILIES)}")
    if cfg.window_s < 1:
        raise ConfigError("sampling.window must be at least 1 second")
    if cfg.duty_period_s and cfg.duty_period_s < cfg.window_s + cfg.warmup_s:
        raise ConfigError("sampling.duty_period must be 0 (always on) or at least window + warmup")
    if cfg.duty_period_s and cfg.duty_period_s % cfg.window_s:
        raise ConfigError("sampling.duty_period must be a multiple of sampling.window")
    if not cfg.spool_resend_after_s >= 1:
        raise ConfigError("spool.resend_after must be at least 1 second (default 300: longer than "
                          "the ingest's batch age and restart)")
    if not cfg.spool_resend_max_s >= cfg.spool_resend_after_s:
        raise ConfigError("spool.resend_max must be at least spool.resend_after")
    if cfg.clock not in ("auto", "trusted"):
        raise ConfigError("clock must be 'auto' or 'trusted'")
    places = [(c.bus, c.address) if c.kind != "iio" else (None, c.device) for c in cfg.climate]
    if len(set(places)) != len(places):
        raise ConfigError("two [[climate]] tables name the same device (bus and address, or IIO device)")
    return cfg
