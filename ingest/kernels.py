"""Quality kernels: pure numpy functions, arrays in, same-shape boolean masks out (pvlib style).

Owns one function per check of a reading (out of range, flat line, the Hampel spike
identifier, high humidity, unsynced clock, future timestamp, A/B disagreement, low
coverage, sensor fault) and :func:`flags`, which packs their masks into the ``qc`` bitmask whose bits
:class:`civicair.schema.qc.Flag` defines. ``docs/quality.md`` gives each kernel its source.

No per-reading Python loop, no I/O, no clock (``now`` is an argument), no state: the
windows a check needs from earlier batches come from :mod:`ingest.series`, and the
wiring to a :class:`~ingest.columns.Batch` is :mod:`ingest.clean`'s. NaN means missing;
a missing value never raises a flag by itself.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from civicair.schema.qc import Flag

#: Rows of windows the Hampel kernel works on at a time.
_BLOCK_ROWS = 1 << 16

#: Hampel's scale factor: 1.4826 · MAD estimates the standard deviation of normal data.
MAD_TO_SIGMA = 1.4826


def out_of_range(values: np.ndarray, upper: np.ndarray | float,
                 lower: np.ndarray | float = 0.0) -> np.ndarray:
    """Values below ``lower`` or above ``upper``: what the sensor cannot output.

    Parameters
    ----------
    values : array of float
        A measured value [its unit: µg/m³ for mass concentrations, % for RH, °C for
        temperature]; NaN (missing) is never out of range.
    upper : array of float or float
        Upper end of the sensor's output range [same unit], broadcast against ``values``.
    lower : array of float or float
        Lower end [same unit]; 0 (a mass concentration, a humidity) unless given.
    """
    values = np.asarray(values, dtype=np.float64)
    return (values < lower) | (values > upper)


def flat_line(values: np.ndarray, series: np.ndarray, windows: int) -> np.ndarray:
    """Values equal to the ``windows − 1`` values before them in the same series.

    Parameters
    ----------
    values : array of float
        One value per window [any unit], in time order within each series.
    series : array of int
        Series label of each value; each series' values are contiguous.
    windows : int
        Length of the run of identical values that is flagged [count], at least 2.

    Returns
    -------
    array of bool
        True where the value closes (or continues) a run of at least ``windows``
        identical values. NaN breaks a run (NaN != NaN).
    """
    values = np.asarray(values, dtype=np.float64)
    series = np.asarray(series)
    if windows < 2:
        raise ValueError("windows must be at least 2")
    size = values.size
    same = np.zeros(size, dtype=bool)
    same[1:] = (values[1:] == values[:-1]) & (series[1:] == series[:-1])
    index = np.arange(size)
    run_start = np.maximum.accumulate(np.where(same, 0, index)) if size else index
    return index - run_start + 1 >= windows


def _segment_starts(series: np.ndarray) -> np.ndarray:
    """For each position, the index of the first element of its contiguous series run."""
    size = series.size
    index = np.arange(size)
    if size == 0:
        return index
    first = np.ones(size, dtype=bool)
    first[1:] = series[1:] != series[:-1]
    return np.maximum.accumulate(np.where(first, index, 0))


#: A 16-comparator sorting network for 7 inputs (16 is the fewest possible: Knuth,
#: TAOCP vol. 3, 5.3.4); checked on all 2⁷ zero-one inputs (the zero-one principle).
_NETWORK_7 = ((0, 6), (2, 3), (4, 5), (0, 2), (1, 4), (3, 6), (0, 1), (2, 5), (3, 4),
              (1, 2), (4, 6), (2, 3), (4, 5), (1, 2), (3, 4), (5, 6))


@functools.cache
def _median_network(width: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchanges that leave the middle one or two of ``width`` inputs in place.

    A sorting network (:data:`_NETWORK_7` for 7, odd-even transposition otherwise) with the
    comparators that cannot reach the middle positions pruned away.
    """
    network: tuple[tuple[int, int], ...]
    if width == 7:
        network = _NETWORK_7
    else:
        network = tuple((i, i + 1) for r in range(width) for i in range(r % 2, width - 1, 2))
    needed = {(width - 1) // 2, width // 2}
    kept = []
    for i, j in reversed(network):
        if i in needed or j in needed:
            kept.append((i, j))
            needed |= {i, j}
    return tuple(reversed(kept))


#: Widest Hampel window whose medians use a comparator network, not a partition.
_NETWORK_MAX_WIDTH = 11


def _median_in_place(rows: np.ndarray) -> np.ndarray:
    """Median of each row of a NaN-free 2-D array; partitions ``rows`` in place."""
    width = rows.shape[1]
    lo, hi = (width - 1) // 2, width // 2
    rows.partition((lo, hi) if lo != hi else lo, axis=1)
    return 0.5 * (rows[:, lo] + rows[:, hi])


def _column_medians(columns: list[np.ndarray], spare: np.ndarray) -> np.ndarray:
    """Per-row median of NaN-free equal-length columns (one per window position).

    Runs a comparator network with ``np.minimum``/``np.maximum`` over whole columns,
    which for short Hampel windows is about twice as fast as ``ndarray.partition``
    along rows (:func:`_median_in_place`); the result is the same (exact comparisons). The
    arrays of the list ``columns`` are overwritten and the list's entries swapped (with
    ``spare``, a scratch column): afterwards it holds each row's values permuted.
    """
    for i, j in _median_network(len(columns)):
        a, b = columns[i], columns[j]
        np.minimum(a, b, out=spare)
        np.maximum(a, b, out=b)
        columns[i], spare = spare, a
    width = len(columns)
    return 0.5 * (columns[(width - 1) // 2] + columns[width // 2])


def _nan_medians(rows: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of the non-NaN entries of each row (``count`` of them); NaN if none."""
    ordered = np.sort(rows, axis=1)  # NaN sorts last
    out = np.full(rows.shape[0], np.nan)
    has = count > 0
    c = count[has]
    r = np.flatnonzero(has)
    out[has] = 0.5 * (ordered[r, (c - 1) // 2] + ordered[r, c // 2])
    return out


def hampel(
    values: np.ndarray,
    series: np.ndarray,
    *,
    window: int = 7,
    k: float = 3.0,
    min_deviation: float = 0.0,
    min_periods: int | None = None,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """Hampel identifier against each value's preceding ``window`` values in its series.

    A value x is an outlier when ``|x − m| > max(k · 1.4826 · MAD, min_deviation)``,
    with m the median and MAD the median absolute deviation from m of the (up to)
    ``window`` values before x in the same series (Hampel, 1974, J. Am. Stat. Assoc.
    69, 383–393; Pearson, 2002, IEEE Trans. Control Syst. Technol. 10, 55–63, whose
    filter uses a centred window). The window here trails: only the past is known
    when a reading arrives, and leaving x out keeps a spike from inflating its own MAD.

    Parameters
    ----------
    values : array of float
        One value per window [µg/m³], in time order within each series; NaN = missing.
    series : array of int
        Series label of each value; each series' values are contiguous.
    window : int
        Preceding values used [count].
    k : float
        Threshold in robust standard deviations [1].
    min_deviation : float
        Smallest deviation ever flagged [µg/m³]; 0 gives Hampel's rule unchanged.
    min_periods : int, optional
        Non-NaN preceding values needed to judge [count]; default ``window``.
    where : array of bool, optional
        Judge only these positions (the others come out False); default all.

    Returns
    -------
    array of bool
        Same shape as ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    series = np.asarray(series)
    if window < 1:
        raise ValueError("window must be at least 1")
    min_periods = window if min_periods is None else min_periods
    size = values.size
    out = np.zeros(size, dtype=bool)
    rows = np.arange(size) if where is None else np.flatnonzero(where)
    if rows.size == 0:
        return out
    depth = rows - _segment_starts(series)[rows]  # preceding values in the same series
    # past[i] is the window values[i - window : i]: a view, no copy.
    past = sliding_window_view(np.concatenate([np.full(window, np.nan), values]), window)
    nans_before = np.concatenate([[0], np.cumsum(np.isnan(values))])
    clean_window = nans_before[rows] == nans_before[np.maximum(rows - window, 0)]
    whole = (depth >= window) & clean_window

    # Windows are worked on in blocks of rows: a few MB of temporaries each, reused
    # by the allocator, instead of one fresh copy of every window (56 MB a million).
    for lo in range(0, rows.size, _BLOCK_ROWS):
        block, d, ok = (a[lo : lo + _BLOCK_ROWS] for a in (rows, depth, whole))
        r = block[ok]  # common case: a whole window of the series, no NaN in it
        if r.size and window > _NETWORK_MAX_WIDTH:
            w = past[r]  # a copy, worked on in place below
            median = _median_in_place(w)
            w -= median[:, None]
            mad = _median_in_place(np.abs(w, out=w))
            threshold = np.maximum(k * MAD_TO_SIGMA * mad, min_deviation)
            out[r] = np.abs(values[r] - median) > threshold
        elif r.size:
            x = values[r]
            columns = [values[r - (window - j)] for j in range(window)]
            median = _column_medians(columns, np.empty_like(x))
            for c in columns:
                np.subtract(c, median, out=c)
                np.abs(c, out=c)
            mad = _column_medians(columns, np.empty_like(x))
            threshold = np.maximum(k * MAD_TO_SIGMA * mad, min_deviation)
            out[r] = np.abs(x - median) > threshold
        r, d = block[~ok], d[~ok]  # windows cut by the series start or holding NaN
        if r.size:
            w = np.where(np.arange(window) >= window - d[:, None], past[r], np.nan)
            count = np.count_nonzero(~np.isnan(w), axis=1)
            median = _nan_medians(w, count)
            mad = _nan_medians(np.abs(w - median[:, None]), count)
            threshold = np.maximum(k * MAD_TO_SIGMA * mad, min_deviation)
            out[r] = (count >= min_periods) & (np.abs(values[r] - median) > threshold)
    return out


def high_humidity(rh: np.ndarray, threshold: float = 85.0) -> np.ndarray:
    """RH above ``threshold``.

    Parameters
    ----------
    rh : array of float
        Relative humidity [%]; NaN (no humidity sensor) is never high.
    threshold : float
        [%]
    """
    return np.asarray(rh, dtype=np.float64) > threshold


def clock_unsynced(synced: np.ndarray) -> np.ndarray:
    """Readings stamped by a clock the station did not know to be good.

    Parameters
    ----------
    synced : array of bool
        The reading's ``synced`` field.
    """
    return ~np.asarray(synced, dtype=bool)


def future_timestamp(ts: np.ndarray, now: float, tolerance_s: float = 300.0) -> np.ndarray:
    """Timestamps more than ``tolerance_s`` ahead of ``now``.

    Parameters
    ----------
    ts : array of int
        End of the reading's window [s since the UTC epoch].
    now : float
        The ingest's clock [s since the UTC epoch].
    tolerance_s : float
        [s]
    """
    return np.asarray(ts) > now + tolerance_s


def ab_disagreement(
    a: np.ndarray, b: np.ndarray, abs_limit: float = 5.0, rel_limit: float = 0.70
) -> np.ndarray:
    """Channel pairs that disagree: ``|A − B| > abs_limit`` and ``2|A − B|/(A + B) > rel_limit``.

    The US EPA cleaning criterion for PurpleAir's two Plantower channels (Barkjohn et
    al., 2021, AMT 14, 4617–4637, Sect. 3.2.3 "Comparison of A and B channels", as
    EPA's sensortoolkit ``purpleair_ab_averages`` cites and implements it: both the
    absolute and the relative difference must exceed their limits).

    Parameters
    ----------
    a, b : array of float
        PM2.5 of channels a and b for the same station and window [µg/m³]; a pair with
        a NaN is never flagged.
    abs_limit : float
        [µg/m³]
    rel_limit : float
        Difference relative to the pair's mean [fraction].
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.abs(2.0 * diff / (a + b))
    return (diff > abs_limit) & (relative > rel_limit)


def low_coverage(
    n: np.ndarray, window_s: np.ndarray, frame_period_s: np.ndarray, fraction: float = 0.75
) -> np.ndarray:
    """Readings averaged from fewer than ``fraction`` of the frames their window should hold.

    Parameters
    ----------
    n : array of int
        Frames averaged [count].
    window_s : array of int
        Window length [s].
    frame_period_s : array of float
        The sensor's longest normal frame interval [s]; NaN (unknown sensor) is never
        flagged.
    fraction : float
        [fraction]
    """
    expected = np.asarray(window_s, dtype=np.float64) / np.asarray(frame_period_s, dtype=np.float64)
    return np.asarray(n, dtype=np.float64) < fraction * expected


def sensor_fault(status: np.ndarray, fault_bits: np.ndarray | int) -> np.ndarray:
    """True where a device status register has a fault bit set.

    Parameters
    ----------
    status : ndarray of int
        The register of each reading (0 where the reading carries none).
    fault_bits : ndarray of int or int
        Per reading (or for all), the bits that mean a fault for its sensor model
        (:data:`civicair.schema.sensors.STATUS_FAULT_BITS`; SPS30 datasheet 4.4: fan
        speed warning bit 21, laser failure bit 5, fan failure bit 4).

    >>> sensor_fault(np.array([0, 1 << 21, 1 << 3, 1 << 5]), (1 << 21) | (1 << 5) | (1 << 4)).tolist()
    [False, True, False, True]
    """
    return (np.asarray(status, dtype=np.int64) & np.asarray(fault_bits, dtype=np.int64)) != 0


def flags(**masks: np.ndarray) -> np.ndarray:
    """Combine boolean masks into the ``qc`` bitmask.

    Each keyword is a :class:`Flag` name in lower case (``spike=…``); all masks must
    have the same shape. Returns int64 (InfluxDB integers are signed 64-bit).

    >>> flags(spike=np.array([True, False]), out_of_range=np.array([True, True])).tolist()
    [5, 1]
    """
    if not masks:
        raise TypeError("flags() needs at least one mask")
    out: np.ndarray | None = None
    # Bits are gathered in int16 while they fit (a quarter of the memory traffic).
    work: type[np.signedinteger] = np.int16 if max(Flag).value < 1 << 15 else np.int64
    for name, mask in masks.items():
        try:
            bit = Flag[name.upper()]
        except KeyError:
            raise TypeError(
                f"unknown flag {name!r}; one of {[f.name.lower() for f in Flag if f.name]}") from None
        mask = np.asarray(mask, dtype=bool)
        if out is None:
            out = np.zeros(mask.shape, dtype=work)
        elif mask.shape != out.shape:
            raise ValueError(f"mask {name!r} has shape {mask.shape}, expected {out.shape}")
        out |= mask.astype(work) * work(bit.value)
    assert out is not None
    return out.astype(np.int64)
