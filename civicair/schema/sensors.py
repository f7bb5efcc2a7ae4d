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
