"""Cleaning stage: the derived columns the API and dashboards show.

Sets, on a decoded :class:`~ingest.columns.Batch`:

``derived["pm25"]``         float64, the corrected PM2.5 [µg/m³] (:mod:`ingest.corrections`)
``derived["pm25_method"]``  object (str), which correction produced it
``derived["qc"]``           int64, the quality bitmask (:class:`civicair.schema.qc.Flag`)

Readings are flagged, never dropped or reordered. :class:`Cleaner` holds the
per-series history (:mod:`ingest.series`) that the flat-line, spike and A/B flags need
across batches; there is no shared module-level Cleaner: whoever cleans owns one (the
consumer owns the ingest's and hands it to the batch step, :mod:`ingest.batch`). This
module only wires the pure kernels of :mod:`ingest.kernels` and :mod:`ingest.corrections`
to a batch: no I/O.
"""

from __future__ import annotations

import time

import numpy as np

from civicair.schema.sensors import RH_RANGE_PCT, STATUS_FAULT_BITS, TEMP_RANGE_C
from ingest import corrections
from ingest.columns import Amendments, Batch
from ingest.grouping import factorize, lookup
from ingest.kernels import (
    clock_unsynced,
    flags,
    future_timestamp,
    high_humidity,
    low_coverage,
    out_of_range,
    sensor_fault,
)
from ingest.quality import QualitySettings
from ingest.series import SeriesHistory

#: Mass-concentration columns checked against the sensor's range (``rh`` and ``temp`` are
#: checked against the companions' ranges, ``RH_RANGE_PCT`` and ``TEMP_RANGE_C``).
MASS_COLUMNS = ("pm1_cf1", "pm25_cf1", "pm10_cf1", "pm1_atm", "pm25_atm", "pm4_atm", "pm10_atm")
#: Decimals of the stored corrected ``pm25`` (0.01 µg/m³; see docs/quality.md).
PM25_DECIMALS = 2


class Cleaner:
    """Flags and corrects batches, remembering recent windows of every series.

    Not thread-safe: one thread owns a Cleaner (the ingest's prepare thread).
    """

    def __init__(self, settings: QualitySettings | None = None) -> None:
        self.settings = settings or QualitySettings()
        self.history = SeriesHistory(self.settings.history_depth)

    def restore(self, station: np.ndarray, sensor: np.ndarray, channel: np.ndarray, ts: np.ndarray,
                pm25_cf1: np.ndarray, pm25_atm: np.ndarray, qc: np.ndarray) -> int:
        """Remember windows stored before a restart (see :mod:`ingest.restore`), so that
        flat-line, spike and A/B judge the next windows against them. The value judged
        is ``pm25_cf1``, else ``pm25_atm``, as in :meth:`clean`. Returns windows kept."""
        judged = np.where(np.isnan(pm25_cf1), pm25_atm, pm25_cf1)
        return self.history.restore(station, sensor, channel, ts, judged, qc)

    def clean(self, batch: Batch, now: float | None = None) -> Batch:
        """Set ``pm25``, ``pm25_method`` and ``qc`` on ``batch`` and return it; when the
        batch shows that points written before need another flag (an A/B pair split
        across batches), ``batch.amended`` lists them.

        Parameters
        ----------
        batch : Batch
            Decoded readings, in any order; modified in place.
        now : float, optional
            The ingest's clock [s since the UTC epoch] for the future-timestamp flag;
            default ``time.time()``.
        """
        size = len(batch)
        if size == 0:
            batch.derived["pm25"] = np.zeros(0, dtype=np.float64)
            batch.derived["pm25_method"] = np.zeros(0, dtype=object)
            batch.derived["qc"] = np.zeros(0, dtype=np.int64)
            return batch
        now = time.time() if now is None else now
        s = self.settings
        missing = np.full(size, np.nan)

        series = factorize(batch.station, batch.sensor, batch.channel)
        # Sensor tables are consulted once per distinct sensor name, not per reading.
        series_sensor = batch.sensor[series.first]
        sensors = factorize(series_sensor)
        upper = lookup(series_sensor, s.range_max_ug_m3, np.inf, sensors)[series.codes]
        period = lookup(series_sensor, s.frame_period_s, np.nan, sensors)[series.codes]
        family = corrections.sensor_family(series_sensor, sensors)[series.codes]

        # A PM2.5 outside what the sensor can output (below 0, above its maximum: a broken
        # sensor, or a hostile 1e308) is stored as sent and flagged OUT_OF_RANGE, but it
        # gets no corrected pm25 and does not enter the series' history: a number no sensor
        # makes must not reach a map, nor overflow the corrections.
        cf1 = batch.values.get("pm25_cf1", missing)
        atm = batch.values.get("pm25_atm", missing)
        impossible = out_of_range(cf1, upper) | out_of_range(atm, upper)
        if impossible.any():
            cf1, atm = np.where(impossible, np.nan, cf1), np.where(impossible, np.nan, atm)
        # Likewise an RH or temperature no companion can report (RH outside 0–100 %, a
        # temperature outside −40–125 °C, or ±1e308): stored as sent and flagged, so that
        # the clean aggregates leave it out; an RH there is neither used by the corrections
        # nor judged humid. No correction or flag uses the temperature.
        rh = batch.values.get("rh", missing)
        rh_outside = out_of_range(rh, upper=RH_RANGE_PCT[1], lower=RH_RANGE_PCT[0])
        if rh_outside.any():
            rh = np.where(rh_outside, np.nan, rh)
        temp = batch.values.get("temp", missing)
        outside = rh_outside | out_of_range(temp, upper=TEMP_RANGE_C[1], lower=TEMP_RANGE_C[0])
        pm25, method = corrections.correct_codes(batch, family, cf1, atm, rh)

        judged = np.where(np.isnan(cf1), atm, cf1)
        history = self.history.assess(series, batch.station, batch.sensor, batch.channel,
                                      batch.ints["ts"], judged, s)

        for name in MASS_COLUMNS:
            if name in batch.values:
                outside |= out_of_range(batch.values[name], upper)

        # Stored to 0.01 µg/m³: the published coefficients carry three or four
        # significant figures and the sensors resolve 0.1 to 1 µg/m³; more digits would
        # be float noise (6.740220000000001) served to analysts as if it were data.
        if batch.status is not None:
            fault_bits = lookup(series_sensor, STATUS_FAULT_BITS, 0, sensors)[series.codes].astype(np.int64)
            fault = sensor_fault(batch.status, fault_bits)
        else:
            fault = np.zeros(size, dtype=bool)
        batch.derived["pm25"] = np.round(pm25, PM25_DECIMALS)
        batch.derived["pm25_method"] = corrections.METHOD_NAMES[method]
        batch.derived["qc"] = flags(
            out_of_range=outside,
            flat_line=history.flat_line,
            spike=history.spike,
            high_humidity=high_humidity(rh, s.high_humidity_rh),
            clock_unsynced=clock_unsynced(batch.synced),
            future_timestamp=future_timestamp(batch.ints["ts"], now, s.future_tolerance_s),
            ab_disagreement=history.ab_disagreement,
            low_coverage=low_coverage(batch.ints["n"], batch.ints["window"], period,
                                      s.coverage_fraction),
            uncorrected=method == corrections.UNCORRECTED,
            sensor_fault=fault,
        )
        self.history.record_qc(history, batch.derived["qc"])
        if history.amend_slot.size:
            station, sensor, channel = self.history.series_of(history.amend_slot)
            batch.amended = Amendments(station, sensor, channel, history.amend_ts, history.amend_qc)
        return batch


__all__ = ["MASS_COLUMNS", "PM25_DECIMALS", "Cleaner"]
