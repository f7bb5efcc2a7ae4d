"""Parameters of the quality flags: :class:`QualitySettings`, and nothing else.

What each bit of ``qc`` means lives in the schema (:mod:`civicair.schema.qc`), the
datasheet ranges and frame periods in :mod:`civicair.schema.sensors`; the checks are
the pure kernels of :mod:`ingest.kernels`, the per-series history is
:mod:`ingest.series`, and :mod:`ingest.clean` wires them to a batch. Each default is
explained in ``docs/quality.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from civicair.schema.qc import FUTURE_TOLERANCE_S
from civicair.schema.sensors import FRAME_PERIOD_S, RANGE_MAX_UG_M3


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """Parameters of the quality flags; each default is explained in docs/quality.md."""

    #: FLAT_LINE: this many consecutive windows with the same PM2.5 value.
    flat_line_windows: int = 10
    #: SPIKE: how many preceding windows of the series the Hampel median/MAD use.
    hampel_window: int = 7
    #: SPIKE: flag when |x − median| > k · 1.4826 · MAD (Pearson's usual 3).
    hampel_k: float = 3.0
    #: SPIKE: never flag a deviation smaller than this [µg/m³] (MAD is 0 on a plateau).
    hampel_min_deviation: float = 1.0
    #: SPIKE: valid (non-NaN) preceding windows needed before judging [count].
    hampel_min_periods: int = 7
    #: HIGH_HUMIDITY: RH above this [%].
    high_humidity_rh: float = 85.0
    #: FUTURE_TIMESTAMP: ``ts`` more than this ahead of ``now`` [s].
    future_tolerance_s: float = float(FUTURE_TOLERANCE_S)
    #: AB_DISAGREEMENT: |A − B| above this [µg/m³] …
    ab_abs_limit: float = 5.0
    #: … and 2·|A − B| / (A + B) above this [fraction].
    ab_rel_limit: float = 0.70
    #: LOW_COVERAGE: ``n`` below this fraction of the expected frames.
    coverage_fraction: float = 0.75
    #: OUT_OF_RANGE: upper end of each sensor's range [µg/m³]; unknown sensors: only < 0.
    range_max_ug_m3: Mapping[str, float] = field(default_factory=lambda: RANGE_MAX_UG_M3)
    #: LOW_COVERAGE: each sensor's longest normal frame interval [s]; unknown: no flag.
    frame_period_s: Mapping[str, float] = field(default_factory=lambda: FRAME_PERIOD_S)

    def __post_init__(self) -> None:
        if self.flat_line_windows < 2:
            raise ValueError("flat_line_windows must be at least 2")
        if self.hampel_window < 1 or not 1 <= self.hampel_min_periods <= self.hampel_window:
            raise ValueError("need 1 <= hampel_min_periods <= hampel_window")

    @property
    def history_depth(self) -> int:
        """Preceding windows per series that flat-line and spike look at [count]."""
        return max(self.flat_line_windows - 1, self.hampel_window)
