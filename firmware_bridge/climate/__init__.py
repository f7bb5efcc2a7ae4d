"""Temperature and humidity companions of a PM sensor: codecs, I/O shells, window means.

The PM corrections (US EPA for Plantower, κ-Köhler for SDS011) need relative humidity;
a plain PMS5003 or SDS011 has none, so volunteers put a BME280, SHT3x/SHT4x,
HTU21D/Si7021 or DHT22 beside it. One module per device family, each exporting the
same names (the PM families' habit):

``MODELS``     the config kinds the module handles
``ADDRESSES``  the I²C addresses the part can have, the usual one first
``Codec``      ``Codec(model)``: ``init_plan()``/``accept_init(replies)`` once, then
               ``measure_plan()``/``decode(replies) -> ClimateSample``; never does I/O

:mod:`.i2c` runs a codec's plans over ``smbus2`` (or the simulated bus of
:mod:`.simulated`); :mod:`.iio` reads any kernel IIO humidity/temperature device (the
DHT22 through ``dtoverlay=dht11``, the kernel's own BME280 driver); :mod:`.window`
turns a companion's readings into the mean of one PM window. Not yet wired into the
bridge's sensor loop (docs/climate.md).
"""

from __future__ import annotations

from types import ModuleType

from firmware_bridge.climate import bme280, htu21d, sht3x, sht4x

#: Config kind -> codec module (``iio`` is not a codec: see :mod:`.iio`).
I2C_FAMILIES: dict[str, ModuleType] = {
    model: module for module in (bme280, sht3x, sht4x, htu21d) for model in module.MODELS
}
KINDS = (*I2C_FAMILIES, "iio")


def family(kind: str) -> ModuleType:
    """The codec module of an I²C kind."""
    try:
        return I2C_FAMILIES[kind]
    except KeyError:
        raise ValueError(f"unsupported climate kind {kind!r}; one of {', '.join(KINDS)}") from None
