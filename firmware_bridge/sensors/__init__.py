"""Sans-IO sensor protocols, one module per sensor family.

Each family module exports the same names:

``BAUD_RATE``     the UART speed the sensor speaks
``MODELS``        the contract sensor names the module handles
``COMMANDS``      a table of command name -> bytes (or a builder)
``Parser``        ``Parser(model).feed(data) -> list[Event]``; never raises on input
``encode_frame``  ``encode_frame(model, values) -> bytes``, the sensor's own data frame
                  (used by the simulator and the tests)

No module here imports serial, MQTT, sockets or clocks.
"""

from __future__ import annotations

from types import ModuleType

from firmware_bridge.sensors import plantower

FAMILIES: dict[str, ModuleType] = {model: plantower for model in plantower.MODELS}


def family(model: str) -> ModuleType:
    """The protocol module for a contract sensor name."""
    try:
        return FAMILIES[model]
    except KeyError:
        raise ValueError(
            f"unsupported sensor {model!r}; supported: {', '.join(sorted(FAMILIES))}"
        ) from None
