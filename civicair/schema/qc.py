"""The bits of the stored ``qc`` field: what each means, and its name for the public.

Values are part of the stored data and of the open archive: never renumber a bit,
only add new ones. The ingest's kernels (``ingest.quality``) set them; the API,
the dashboards and the archive read them from here. docs/quality.md gives each bit
its source.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Flag(enum.IntFlag):
    """Bits of the ``qc`` field. Values are part of the stored data: never renumber."""

    OUT_OF_RANGE = 1 << 0  #: a mass concentration, RH or temperature outside what its sensor can report
    FLAT_LINE = 1 << 1  #: PM2.5 unchanged for N consecutive windows of the series
    SPIKE = 1 << 2  #: PM2.5 is a Hampel outlier against the series' preceding windows
    HIGH_HUMIDITY = 1 << 3  #: RH above the threshold: hygroscopic growth inflates PM
    CLOCK_UNSYNCED = 1 << 4  #: the station's clock was not known good (``synced`` false)
    FUTURE_TIMESTAMP = 1 << 5  #: ``ts`` more than the tolerance ahead of the ingest clock
    AB_DISAGREEMENT = 1 << 6  #: channels a and b of the station disagree (US EPA criterion)
    LOW_COVERAGE = 1 << 7  #: fewer frames averaged than 75 % of what the window should hold
    UNCORRECTED = 1 << 8  #: ``pm25`` is the sensor's atmospheric value, not corrected
    SENSOR_FAULT = 1 << 9  #: the sensor reported a fault (SPS30 status: fan, laser or fan speed)


@dataclass(frozen=True, slots=True)
class FlagText:
    label: str  #: short legend text
    explanation: str  #: one sentence for the public


#: How each bit is named to the public (dashboards, API documentation, data package).
TEXT: dict[Flag, FlagText] = {
    Flag.OUT_OF_RANGE: FlagText("out of range",
                                "a value the sensor cannot measure: a concentration below zero or above "
                                "its maximum, a humidity outside 0–100 % or a temperature outside "
                                "−40–125 °C"),
    Flag.FLAT_LINE: FlagText("stuck value", "PM2.5 unchanged for many windows in a row: a stuck sensor"),
    Flag.SPIKE: FlagText("spike", "a sudden jump far outside the station's recent values"),
    Flag.HIGH_HUMIDITY: FlagText("high humidity",
                                 "very humid air: water on particles makes low-cost sensors read high"),
    Flag.CLOCK_UNSYNCED: FlagText("clock not synchronised", "the station's clock was not known to be right"),
    Flag.FUTURE_TIMESTAMP: FlagText("timestamp in the future",
                                    "the reading claimed a time ahead of the server"),
    Flag.AB_DISAGREEMENT: FlagText("sensors A/B disagree",
                                   "the station's two sensors disagree more than the US EPA criterion "
                                   "allows"),
    Flag.LOW_COVERAGE: FlagText("few samples", "the sensor sent fewer samples than a full window holds"),
    Flag.UNCORRECTED: FlagText("uncorrected",
                               "PM2.5 is the sensor's own value: no published correction applied"),
    Flag.SENSOR_FAULT: FlagText("sensor fault",
                                "the sensor itself reported a fault (its fan or laser): its values are "
                                "likely wrong"),
}

#: Bits that do NOT make a reading "flagged": UNCORRECTED only says pm25 is the sensor's
#: own value because no humidity was available; excluding it would drop every PMS5003
#: without RH. Every other bit, including bits added later, excludes a reading from
#: the API's aggregates.
QC_INFORMATIONAL = int(Flag.UNCORRECTED)
#: ``qc & QC_FLAGGED_MASK`` is non-zero for a flagged reading (fits a signed 64-bit integer).
QC_FLAGGED_MASK = (2**63 - 1) & ~QC_INFORMATIONAL

#: Default tolerance of FUTURE_TIMESTAMP [s]: a reading stamped further ahead of the
#: ingest's clock is flagged (and does not count for the ingest's lag gauge).
FUTURE_TOLERANCE_S = 300


def names(qc: int) -> list[str]:
    """The names of the bits set in ``qc``, lowest bit first (unknown bits as ``bit_N``)."""
    out = []
    for bit in range(max(int(qc), 0).bit_length()):
        if qc >> bit & 1:
            try:
                out.append(Flag(1 << bit).name or f"bit_{bit}")
            except ValueError:
                out.append(f"bit_{bit}")
    return out
