"""Sans-IO sensor protocols, one module per sensor family.

Each family module exports the same names, the :class:`~firmware_bridge.sensors.base.SensorFamily`
protocol (checked by mypy where :data:`FAMILIES` is built):

``BAUD_RATE``      the UART speed the sensor speaks
``MODELS``         the contract sensor names the module handles
``COMMANDS``       a table of command name -> bytes (or a builder); the verbs
                   ``sleep``, ``wake`` and ``passive_read`` mean the same in every family
``INIT_SEQUENCE``  command names sent after every (re)open of the port
``Parser``         ``Parser(model).feed(data) -> list[Event]``; never raises on input
``POLL``           ``(command name, period s)`` for a sensor that does not stream after
                   its ``INIT_SEQUENCE`` and must be asked for each reading (the SPS30);
                   None when the sensor streams
``reconcile``      ``reconcile(reply) -> bytes | None``, the command that brings a
                   flash-kept setting to what the bridge needs (SDS011; None elsewhere)
``encode_frame``   ``encode_frame(model, values) -> bytes``, the sensor's own data frame
                   (used by the simulator and the tests)

Beside each family, ``<family>_sim.py`` holds the simulated sensor (host bytes in,
sensor bytes out); :mod:`firmware_bridge.simulator` puts them on pseudo-terminals.
:mod:`firmware_bridge.sensors.framing` is the resync loop the Plantower and SDS011
parsers and simulated sensors share.

No module here imports serial, MQTT, sockets or clocks.
"""

from __future__ import annotations

from firmware_bridge.sensors import plantower, sds011, sps30
from firmware_bridge.sensors.base import SensorFamily

#: The family modules; the annotation makes mypy check each against the protocol.
MODULES: tuple[SensorFamily, ...] = (plantower, sds011, sps30)
FAMILIES: dict[str, SensorFamily] = {model: module for module in MODULES for model in module.MODELS}


def family(model: str) -> SensorFamily:
    """The protocol module for a contract sensor name."""
    try:
        return FAMILIES[model]
    except KeyError:
        raise ValueError(
            f"unsupported sensor {model!r}; supported: {', '.join(sorted(FAMILIES))}"
        ) from None
