"""Imports go one way: schema at the bottom, the CLI on top (docs/architecture.md).

Every module of every package is parsed (not imported) and each ``import`` it makes,
at any depth (function-level imports too), is checked against the layer table below.
A module may import its own package, the layers below it, the standard library and
third-party packages. (Third-party packages are the extras' business: the bridge
extra's minimality is tested by tests/firmware_bridge/test_bridge_install.py.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("civicair", "firmware_bridge", "ingest", "api", "dashboards", "archive", "rollup")

#: Layer of each of our module prefixes; the longest matching prefix wins.
LAYERS: dict[str, str] = {
    "civicair.schema": "schema",
    # The package's __init__ (only the version) runs before any civicair.* module loads.
    "civicair.__init__": "schema",
    "civicair.__version__": "schema",
    "firmware_bridge": "bridge",
    "civicair.influx": "store",
    "civicair.influxql": "store",
    "civicair.settings": "store",
    "ingest": "service",
    "api": "service",
    "dashboards": "service",
    "archive": "service",
    "rollup": "service",
    "civicair": "top",  # cli, stack, stations (the station registry), services (test/stack harness)
}

#: What each layer may import, besides the standard library and third-party packages.
MAY_IMPORT: dict[str, set[str]] = {
    "schema": {"schema"},
    "bridge": {"schema"},
    "store": {"schema", "store"},
    "service": {"schema", "store"},  # and its own package only: see _own_package
    "top": {"schema", "store", "bridge", "service", "top"},
}

#: Entry points (``python -m ingest``) only hand over to the CLI on top.
ENTRY_POINTS = {"__main__"}


def layer_of(module: str) -> str | None:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    return LAYERS[best] if best else None


def _own_package(module: str, target: str) -> bool:
    return module.split(".")[0] == target.split(".")[0] and layer_of(target) == layer_of(module)


def violations(module: str, source: str) -> list[str]:
    """The imports of ``module`` (given its source text) that go against the layers."""
    if module.rsplit(".", 1)[-1] in ENTRY_POINTS:
        return []
    here = layer_of(module)
    if here is None:
        return []
    out = []
    package = module if module.endswith("__init__") else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the package
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # ``from civicair import influxql`` imports civicair.influxql: judge the name too.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            there = layer_of(target)
            if there is None or _own_package(module, target):
                continue
            allowed = MAY_IMPORT[here]
            if there not in allowed or (here == "service" and there == "service"):
                out.append(f"{module} (layer {here}) imports {target} (layer {there}), line {node.lineno}")
    return out


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            found.append((".".join(rel.parts), path))
    return found


def test_every_module_imports_only_downwards():
    bad = [v for module, path in _modules() for v in violations(module, path.read_text())]
    assert not bad, "imports against the layers (docs/architecture.md):\n" + "\n".join(bad)


def test_every_module_has_a_layer():
    assert all(layer_of(module) for module, _ in _modules())


@pytest.mark.parametrize("module, source", [
    ("civicair.schema.aqi", "import numpy\nfrom api import formats\n"),
    ("firmware_bridge.app", "def f():\n    from ingest import quality\n"),
    ("ingest.consumer", "from api.stationmeta import meta_to_line\n"),
    ("api.catalog", "import firmware_bridge.contract\n"),
    ("dashboards.boards", "from ingest.quality import Flag\n"),
    ("civicair.influx", "from civicair import cli\n"),
    ("civicair.schema.qc", "from . import storage\nfrom .. import influx\n"),
], ids=["schema->api", "bridge->ingest (in a function)", "ingest->api", "api->bridge", "dashboards->ingest",
        "store->cli", "schema->store (relative)"])
def test_a_wrong_import_is_caught(module, source):
    assert violations(module, source)


def test_the_schema_needs_nothing_but_the_standard_library():
    stdlib = sys.stdlib_module_names
    for module, path in _modules():
        if layer_of(module) != "schema":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                assert top in stdlib or top == "__future__" or name.startswith("civicair.schema"), \
                    f"{module} imports {name}, which is not in the standard library"
