"""Sans-IO sensor protocols, one module per sensor family.

Each family module exports the same names:

``BAUD_RATE``      the UART speed the sensor speaks
``MODELS``         the contract sensor names the module handles
``COMMANDS``       a table of command name -> bytes (or a builder); the verbs
                   ``sleep``, ``wake`` and ``passive_read`` mean the same in every family
``INIT_SEQUENCE``  command names sent after every (re)open of the port
``Parser``         ``Parser(model).feed(data) -> list[Event]``; never raises on input
``reconcile``     optional: ``reconcile(reply) -> bytes | None``, the command that
                  brings a flash-kept setting to what the bridge needs (SDS011)
``encode_frame``   ``encode_frame(model, values) -> bytes``, the sensor's own data frame
                   (used by the simulator and the tests)

Optional: ``POLL``, ``(command name, period s)`` for a sensor that does not stream
after its ``INIT_SEQUENCE`` and must be asked for each reading (the SPS30); absent or
None when the sensor streams.

No module here imports serial, MQTT, sockets or clocks.
"""

from __future__ import annotations

from types import ModuleType

from firmware_bridge.sensors import plantower, sds011, sps30

FAMILIES: dict[str, ModuleType] = {
    model: module for module in (plantower, sds011, sps30) for model in module.MODELS
}


def family(model: str) -> ModuleType:
    """The protocol module for a contract sensor name."""
    try:
        return FAMILIES[model]
    except KeyError:
        raise ValueError(
            f"unsupported sensor {model!r}; supported: {', '.join(sorted(FAMILIES))}"
        ) from None
