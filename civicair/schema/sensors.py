"""Datasheet facts of each sensor model that the bridge and the server both need.

The bridge's family modules (``firmware_bridge.sensors.*``) speak the protocols; the
facts that judge a reading on the server (output range, frame period) are data about
the same models and live here, so that the ingest need not import the bridge.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: Plantower models speaking the 32-byte (PMS5003/7003/A003) or 40-byte (PMS5003T/ST) frame.
PLANTOWER_MODELS: tuple[str, ...] = ("pms5003", "pms7003", "pmsa003", "pms5003t", "pms5003st")
#: Every model the wire contract accepts, by family.
FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "plantower": PLANTOWER_MODELS,
    "sds011": ("sds011",),
    "sps30": ("sps30",),
})
MODELS: tuple[str, ...] = tuple(m for models in FAMILIES.values() for m in models)
FAMILY_OF: Mapping[str, str] = MappingProxyType({m: f for f, models in FAMILIES.items() for m in models})

#: Upper end of each sensor's output range [µg/m³]. Plantower "PMS5003 series data
#: manual" V2.3 (2016), technical index: effective range 0–500, maximum range ≥ 1000
#: ("the highest output value of the PM2.5 standard data is not less than 1000"); the
#: maximum, not the effective range, is the limit here, because 500–1000 is exactly the
#: smoke range the Barkjohn et al. (2022) correction was fitted for. Nova Fitness
#: "SDS011 specification" V1.3: range 0.0–999.9. Sensirion "Datasheet SPS30": mass
#: concentration range 0–1000.
RANGE_MAX_UG_M3: Mapping[str, float] = MappingProxyType(
    {**{m: 1000.0 for m in PLANTOWER_MODELS}, "sds011": 999.9, "sps30": 1000.0}
)

#: Range of relative humidity [%] a stored ``rh`` can hold: 0–100 is the whole physical
#: scale, and every companion the bridge reads states it as its specified range (Sensirion
#: "Datasheet SHT3x-DIS" v7 and "Datasheet SHT4x" v6: 0–100 %RH; Bosch "BME280 data sheet"
#: table 1; TE "HTU21D(F)" and Silicon Labs "Si7021-A20": 0–100 %RH). Outside it (a broken
#: sensor, or a hostile ``-1e308``) the reading is flagged OUT_OF_RANGE and its RH is not used.
RH_RANGE_PCT: tuple[float, float] = (0.0, 100.0)
#: Range of temperature [°C] a stored ``temp`` can hold: the widest operating range of the
#: companions we read, Sensirion "Datasheet SHT3x-DIS" v7 and "Datasheet SHT4x" v6 (also TE
#: "HTU21D(F)" and Silicon Labs "Si7021-A20"): −40 to 125 °C. Narrower parts (Bosch BME280:
#: −40 to 85 °C; Aosong DHT22/AM2302: −40 to 80 °C) lie inside it. Outside it the reading
#: is flagged OUT_OF_RANGE.
TEMP_RANGE_C: tuple[float, float] = (-40.0, 125.0)

#: Longest normal interval between two frames [s]: a window of ``w`` seconds should hold
#: at least ``w / period`` frames. Plantower data manual, "output result": in active mode
#: the sensor sends a frame every 2.3 s while the concentration is stable and every
#: 200–800 ms while it changes fast; the slow, stable interval is the honest minimum.
#: SDS011 specification: "serial data output frequency 1 time/s" (continuous working
#: period). SPS30 datasheet: a new measurement every second (the bridge polls at 1 Hz).
FRAME_PERIOD_S: Mapping[str, float] = MappingProxyType(
    {**{m: 2.3 for m in PLANTOWER_MODELS}, "sds011": 1.0, "sps30": 1.0}
)

#: Rated life of the sensor's light source or of the sensor [hours of operation], as its
#: maker states it. Nova Fitness "SDS011 specification" V1.3: service life up to 8000 h
#: (hence its recommended duty cycle). Plantower "PMS5003 series data manual" V2.3: MTTF
#: ≥ 3 years (26,280 h of operation). Sensirion "Datasheet SPS30": lifetime > 10 years in
#: continuous 24 h/day operation (87,600 h). Laser hours past these do not stop a sensor,
#: but its readings drift and drop out: the health board shows sensor age against them.
RATED_LIFE_HOURS: Mapping[str, float] = MappingProxyType(
    {**{m: 3 * 8760.0 for m in PLANTOWER_MODELS}, "sds011": 8000.0, "sps30": 10 * 8760.0}
)

#: Bits of a sensor's device status register (the contract's optional ``status``) that
#: make its readings suspect: the ingest raises ``SENSOR_FAULT`` when one is set. Sensirion
#: "Datasheet SPS30" 4.4, Device Status Register: bit 21 fan speed warning (too high or
#: too low), bit 5 laser failure (laser current out of range), bit 4 fan failure (fan on
#: but 0 RPM). Models without a status register have no entry (no bit can be set).
STATUS_FAULT_BITS: Mapping[str, int] = MappingProxyType({"sps30": (1 << 21) | (1 << 5) | (1 << 4)})
