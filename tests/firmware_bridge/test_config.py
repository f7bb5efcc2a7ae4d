"""Bridge configuration: file, then environment, then flags; clear errors."""

from __future__ import annotations

import pytest

from firmware_bridge import config
from firmware_bridge.errors import ConfigError

TOML = """
station = "lab-1"
[mqtt]
host = "broker.example"
username = "lab-1"
[[sensor]]
port = "/dev/serial0"
model = "pms5003"
[sampling]
window = 60
duty_period = 300
"""


def test_file_then_environment_then_flags(tmp_path):
    f = tmp_path / "bridge.toml"
    f.write_text(TOML)
    env = {"CIVICAIR_MQTT_PASSWORD": "s3cret", "CIVICAIR_MQTT_HOST": "env-host"}
    cfg = config.load(f, env=env, cli={"mqtt": {"port": 8883, "host": None}})
    assert cfg.mqtt.host == "env-host" and cfg.mqtt.port == 8883
    assert cfg.mqtt.username == "lab-1" and cfg.mqtt.password == "s3cret"
    assert cfg.duty_period_s == 300 and cfg.sensors[0].port == "/dev/serial0"


@pytest.mark.parametrize(
    "text, message",
    [
        ('station = "Lab 1"\n[[sensor]]\nport = "/dev/x"', "must match"),
        ('[[sensor]]\nport = "/dev/x"', "no station id: give --config FILE"),
        ('station = "lab-1"', "no \\[\\[sensor\\]\\]"),
        ('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\nmodel = "dylos"', "unsupported"),
        ('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\nbaud = 1', "config"),
        ('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\n[[sensor]]\nport = "/dev/y"', "distinct"),
        ('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\n[sampling]\nduty_period = 70', "duty_period"),
        ("station = [", "config file"),
        ('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\n[spool]\nresend_after = 0', "resend_after"),
        ('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\n[spool]\nresend_after = 600\nresend_max = 60',
         "resend_max must be at least"),
        ('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\n[spool]\nconfirmations = "no"',
         "spool.confirmations must be true or false"),
    ],
)
def test_bad_configs_say_what_is_wrong(tmp_path, text, message):
    f = tmp_path / "bridge.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(f, env={})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml", env={})


def test_flags_without_a_matching_table_in_the_file_are_ignored_when_unset(tmp_path):
    f = tmp_path / "bridge.toml"
    f.write_text('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\n')
    cfg = config.load(f, env={}, cli={"sampling": {"window": None, "warmup": 5}})
    assert cfg.window_s == 60 and cfg.warmup_s == 5


def test_confirmation_settings_default_on_and_come_from_file_or_environment(tmp_path):
    f = tmp_path / "bridge.toml"
    f.write_text('station = "lab-1"\n[[sensor]]\nport = "/dev/x"\n[spool]\nresend_after = 120\n')
    cfg = config.load(f, env={})
    assert cfg.spool_confirmations is True
    assert (cfg.spool_resend_after_s, cfg.spool_resend_max_s) == (120.0, 3600.0)
    cfg = config.load(f, env={"CIVICAIR_SPOOL_CONFIRMATIONS": "false", "CIVICAIR_SPOOL_RESEND_AFTER": "5",
                              "CIVICAIR_SPOOL_RESEND_MAX": "20"})
    assert cfg.spool_confirmations is False
    assert (cfg.spool_resend_after_s, cfg.spool_resend_max_s) == (5.0, 20.0)
