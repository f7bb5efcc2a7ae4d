"""Bridge configuration: one TOML file, overridden by CIVICAIR_* environment variables.

Standard library only (the Pi installs just pyserial and paho-mqtt). See
``firmware_bridge/bridge.example.toml`` for the commented file a volunteer edits.
"""

from __future__ import annotations

import os
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
        )
    except (TypeError, ValueError) as exc:  # unknown key in a table, or a wrong type
        raise ConfigError(f"config: {exc}") from None
    return validate(cfg)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def validate(cfg: BridgeConfig) -> BridgeConfig:
    from firmware_bridge.sensors import FAMILIES

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
    return cfg
