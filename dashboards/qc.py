"""The quality flags (bits of the ``qc`` field) as the dashboards name them to the public.

The bits belong to the ingest (``ingest.quality.Flag``, explained in
docs/quality.md); this table repeats their values with a plain-language label,
because the dashboards must build without numpy. A test keeps the two in step.
InfluxQL 1.x evaluates ``"qc" & bit`` (verified on the real server), so a rate
is the mean of that expression over readings, divided by the bit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QcFlag:
    name: str  # ingest.quality.Flag member
    bit: int
    label: str  # legend text
    explanation: str


FLAGS: tuple[QcFlag, ...] = (
    QcFlag("OUT_OF_RANGE", 1 << 0, "out of range", "a value below zero or above what the sensor can measure"),
    QcFlag("FLAT_LINE", 1 << 1, "stuck value", "PM2.5 unchanged for many windows in a row: a stuck sensor"),
    QcFlag("SPIKE", 1 << 2, "spike", "a sudden jump far outside the station's recent values"),
    QcFlag("HIGH_HUMIDITY", 1 << 3, "high humidity",
           "very humid air: water on particles makes low-cost sensors read high"),
    QcFlag("CLOCK_UNSYNCED", 1 << 4, "clock not synchronised",
           "the station's clock was not known to be right"),
    QcFlag("FUTURE_TIMESTAMP", 1 << 5, "timestamp in the future",
           "the reading claimed a time ahead of the server"),
    QcFlag("AB_DISAGREEMENT", 1 << 6, "sensors A/B disagree",
           "the station's two sensors disagree more than the US EPA criterion allows"),
    QcFlag("LOW_COVERAGE", 1 << 7, "few samples", "the sensor sent fewer samples than a full window holds"),
    QcFlag("UNCORRECTED", 1 << 8, "uncorrected",
           "PM2.5 is the sensor's own value: no published correction applied"),
)
