"""The bridge runs with the ``bridge`` extra alone: no numpy, no web stack on the Pi."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from firmware_bridge import config

SERVER_ONLY = ("numpy", "fastapi", "uvicorn", "httpx", "orjson", "pydantic", "pydantic_settings",
               "starlette", "grafana_client", "yaml")

BLOCKER = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_ONLY!r}:
            raise ImportError(f"{{name}} is not in the bridge extra")
sys.meta_path.insert(0, Block())
"""


def test_bridge_modules_and_commands_import_without_server_packages():
    code = BLOCKER + """
import firmware_bridge.app, firmware_bridge.doctor, firmware_bridge.install, firmware_bridge.simulator
import firmware_bridge.sensors
import firmware_bridge.climate.i2c, firmware_bridge.climate.iio, firmware_bridge.climate.discover
import firmware_bridge.climate.simulated, firmware_bridge.climate.window
from civicair.cli import main
for argv in (["bridge", "--help"], ["simulate", "--help"]):
    try:
        main(argv)
    except SystemExit as e:
        assert e.code == 0, e.code
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr


def test_bridge_extra_lists_only_pyserial_paho_and_smbus2():
    # smbus2: pure-Python I²C for the temperature/humidity companions (docs/climate.md).
    meta = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    deps = meta["project"]["optional-dependencies"]["bridge"]
    assert sorted(d.split(">")[0].split("=")[0] for d in deps) == ["paho-mqtt", "pyserial", "smbus2"]


def test_shipped_example_config_is_valid(tmp_path):
    example = Path(config.__file__).parent / "data" / "bridge.example.toml"
    cfg = config.load(example, env={})
    assert cfg.station == "my-street-1" and cfg.mqtt.tls and cfg.sensors[0].model == "pms5003"
