"""Quality flags of readings: the ``qc`` bitmask, its kernels and the per-series history.

Owns what each bit of ``qc`` means (:class:`Flag`), the per-sensor tables the bits
need (:data:`RANGE_MAX_UG_M3`, :data:`FRAME_PERIOD_S`), the parameters and their
defaults (:class:`QualitySettings`), pure kernels (arrays in, same-shape boolean masks
out) and :class:`SeriesHistory`, the small ring of recent values per
station/sensor/channel that the flat-line, spike and A/B checks need across batches.
``docs/quality.md`` gives each bit its source.

Pure numpy: no per-reading Python loop, no I/O, no clock (``now`` is an argument).
It must not touch the :class:`~ingest.columns.Batch` layout, MQTT or InfluxDB:
:mod:`ingest.clean` wires these kernels to a batch. NaN means missing; a missing
value never raises a flag by itself.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from civicair.schema.qc import FUTURE_TOLERANCE_S, Flag
from civicair.schema.sensors import FRAME_PERIOD_S, RANGE_MAX_UG_M3

#: Rows of windows the Hampel kernel works on at a time.
_BLOCK_ROWS = 1 << 16

#: Hampel's scale factor: 1.4826 · MAD estimates the standard deviation of normal data.
MAD_TO_SIGMA = 1.4826


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


# -- kernels: arrays in, same-shape masks out --------------------------------------------


def out_of_range(values: np.ndarray, upper: np.ndarray | float) -> np.ndarray:
    """Mass concentrations below 0 or above the sensor's maximum.

    Parameters
    ----------
    values : array of float
        Mass concentration [µg/m³]; NaN (missing) is never out of range.
    upper : array of float or float
        Upper end of the sensor's output range [µg/m³], broadcast against ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    return (values < 0.0) | (values > upper)


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


# -- grouping readings by their string keys ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Groups:
    """Readings grouped by equal keys: ``codes[i]`` is reading i's group, ``first[g]``
    the index of the first reading of group g."""

    codes: np.ndarray
    first: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def _column_codes(column: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense codes of one string column, in order of first appearance, and their count.

    numpy cannot hash object strings, and sorting them costs about 0.8 s a million.
    A dict keyed by the strings is exact and runs as a C loop (``map`` over a
    ``defaultdict``'s ``__getitem__``): no Python bytecode runs per reading.
    """
    seen: defaultdict[object, int] = defaultdict(itertools.count().__next__)
    codes = np.fromiter(map(seen.__getitem__, column), dtype=np.int64, count=column.size)
    return codes, len(seen)


#: Leading rows of a column looked at to choose how to code it.
_SAMPLE_ROWS = 4096


def _few_codes(column: np.ndarray) -> tuple[np.ndarray, int] | None:
    """:func:`_column_codes` of a column holding at most two distinct strings (a channel
    column), by elementwise comparison; None when the column holds more or other values."""
    head = list(dict.fromkeys(column[:_SAMPLE_ROWS].tolist()))
    if not 1 <= len(head) <= 2 or any(type(v) is not str for v in head):
        return None
    first = column == head[0]
    if len(head) == 1:
        return (np.zeros(column.size, dtype=np.int64), 1) if first.all() else None
    second = column == head[1]
    if not (first | second).all():
        return None
    return second.astype(np.int64), 2


def _dependent_codes(column: np.ndarray, known: np.ndarray, span: int) -> tuple[np.ndarray, int] | None:
    """:func:`_column_codes` of a column whose value is the same in every row of each group
    ``known`` (codes below ``span``) makes, from one value per group; None when it is not.

    One elementwise comparison with each group's first row verifies the premise; the
    codes keep the order of first appearance, which is always a group's first row.
    """
    size = column.size
    first = np.full(span, size, dtype=np.intp)
    np.minimum.at(first, known, np.arange(size))
    if not (column == column[first[known]]).all():
        return None
    group_rows = np.sort(first[first < size])
    codes, count = _column_codes(column[group_rows])
    per_group = np.zeros(span, dtype=np.int64)
    per_group[known[group_rows]] = codes
    return per_group[known], count


def _columns_codes(columns: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, int]]:
    """:func:`_column_codes` of each column, the cheapest exact way for each.

    A two-valued column (the channel) is coded by comparison; of the other columns
    the most varied (the station) goes through the dict, and a less varied one (the
    sensor, fixed per station and channel) is coded per group of the columns coded
    already when a sample of the leading rows suggests it is fixed per group.
    """
    coded: dict[int, tuple[np.ndarray, int]] = {}
    rest = []
    for i, column in enumerate(columns):
        few = _few_codes(column) if column.size > _SAMPLE_ROWS else None
        if few is None:
            rest.append(i)
        else:
            coded[i] = few
    head_distinct = {i: len(dict.fromkeys(columns[i][:_SAMPLE_ROWS].tolist())) for i in rest}
    for i in sorted(rest, key=lambda i: -head_distinct[i]):
        got = None
        if coded and columns[i].size > _SAMPLE_ROWS:
            known, span = np.zeros(columns[i].size, dtype=np.int64), 1
            for codes, count in coded.values():
                known, span = known * count + codes, span * count
            head = known[:_SAMPLE_ROWS]
            if span <= columns[i].size and head_distinct[i] <= np.unique(head).size:
                if _dependent_codes(columns[i][:_SAMPLE_ROWS], head, span) is not None:
                    got = _dependent_codes(columns[i], known, span)
        coded[i] = got if got is not None else _column_codes(columns[i])
    return [coded[i] for i in range(len(columns))]


def factorize(*columns: np.ndarray) -> Groups:
    """Group the rows of equal-length string columns by equal values (exactly).

    Each column gets dense codes in order of first appearance (:func:`_column_codes`,
    or the same codes found cheaper by :func:`_columns_codes`); their mixed-radix
    combination is relabelled densely (or by one integer sort when the product of
    the cardinalities is large).
    """
    if not columns:
        raise TypeError("factorize() needs at least one column")
    size = columns[0].size
    combined = np.zeros(size, dtype=np.int64)
    span = 1
    for codes, count in _columns_codes(columns):
        if span * count >= 1 << 63:  # relabel before the product could overflow int64
            _, combined = np.unique(combined, return_inverse=True)
            combined = combined.reshape(-1).astype(np.int64)
            span = int(combined.max()) + 1
        combined = combined * count + codes
        span *= count
    if span <= max(4 * size, 1 << 16):
        present = np.zeros(span, dtype=bool)
        present[combined] = True
        relabel = np.cumsum(present) - 1
        group = relabel[combined]
        groups = int(present.sum())
    else:
        _, inverse = np.unique(combined, return_inverse=True)
        group = inverse.reshape(-1).astype(np.int64)
        groups = int(group.max()) + 1 if size else 0
    first = np.full(groups, size, dtype=np.int64)
    np.minimum.at(first, group, np.arange(size))
    return Groups(group.astype(np.intp), first.astype(np.intp))


def lookup(column: np.ndarray, table: Mapping[str, float], default: float = np.nan,
           groups: Groups | None = None) -> np.ndarray:
    """Per-row ``table[column[i]]`` as float64, ``default`` for names not in the table.

    The table is consulted once per distinct name (``groups`` may pass a grouping of
    ``column`` already made), not once per row.
    """
    groups = factorize(column) if groups is None else groups
    names = column[groups.first]
    per_group = np.array([table.get(name, default) for name in names.tolist()], dtype=np.float64)
    return per_group[groups.codes]


def _packed(*keys: np.ndarray) -> np.ndarray | None:
    """Integer keys packed into one int64 that sorts like ``np.lexsort(keys)`` (last key
    most significant, each offset by its minimum), or None when they need over 63 bits."""
    shift, packed = 0, np.zeros(keys[0].size, dtype=np.int64)
    for key in keys:
        lo = int(key.min())
        bits = (int(key.max()) - lo).bit_length()
        if shift + bits > 63:
            return None
        packed |= (key.astype(np.int64) - lo) << shift
        shift += bits
    return packed


def _packed_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort(keys)`` as one int64 argsort when the keys fit (about 10× faster)."""
    packed = _packed(*keys)
    return np.lexsort(keys) if packed is None else np.argsort(packed)


def _slot_ts_order(slot: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
    """``np.lexsort((arange, ts, slot))`` by one radix sort of the slots, when each
    slot's rows already come in ``ts`` order (the usual batch), else None.

    That is the order of ``_packed_order(arrival, ts, slot)`` in :meth:`SeriesHistory.assess`:
    arrival grows with the position (stored windows, all 0, come first and are unique
    per slot and ts)."""
    if slot.size == 0 or int(slot.max()) >= 1 << 16 or int(slot.min()) < 0:
        return None
    order = np.argsort(slot.astype(np.uint16), kind="stable")  # a radix sort
    s_slot, s_ts = slot[order], ts[order]
    if ((s_ts[1:] >= s_ts[:-1]) | (s_slot[1:] != s_slot[:-1])).all():
        return order
    return None


# -- history across batches -------------------------------------------------------------

_SEP = "\x1f"  # cannot occur in a station id, sensor name or channel
_FLAT, _SPIKE, _AB = 1, 2, 4  # verdict bits kept with each stored window


def _no_rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class HistoryFlags:
    flat_line: np.ndarray
    spike: np.ndarray
    ab_disagreement: np.ndarray
    #: Where each batch row's window is kept: slot and column (-1: not kept), for
    #: :meth:`SeriesHistory.record_qc`.
    slot: np.ndarray = field(default_factory=_no_rows)
    column: np.ndarray = field(default_factory=_no_rows)
    #: Stored windows (of earlier batches, already written) that the batch's readings
    #: showed to disagree with their other channel: slot, ts, and the ``qc`` they must
    #: now carry (their stored ``qc`` with AB_DISAGREEMENT added).
    amend_slot: np.ndarray = field(default_factory=_no_rows)
    amend_ts: np.ndarray = field(default_factory=_no_rows)
    amend_qc: np.ndarray = field(default_factory=_no_rows)


class SeriesHistory:
    """The last ``depth`` windows (ts, value, verdict) of every station/sensor/channel.

    :meth:`assess` places a batch after (or, for late readings, among) the series'
    stored windows in time order, computes the flat-line, spike and A/B masks over
    that union and keeps the newest ``depth`` windows per series. A reading that
    repeats a stored (series, ts) — a QoS 1 redelivery — gets the stored verdict of its
    first copy, so a rewrite of the same InfluxDB point keeps its flat-line and spike
    flags (its A/B flag is added if the other channel arrived in between).

    When a batch's reading disagrees with its other channel's window from an earlier
    batch — already written — that stored window is returned for amendment
    (``amend_*``): its stored ``qc`` (recorded with :meth:`record_qc`) with
    AB_DISAGREEMENT added, so both readings of the pair end up flagged, as they would
    had they come in one batch. A window whose final ``qc`` was never recorded is not
    amended (an amendment must not wipe bits it does not know).

    State is per process: with several ingest processes on a shared subscription each
    sees part of every series, and these three flags see only that part.
    Not thread-safe; one writer thread owns it.
    """

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.depth = depth
        self._count = 0  # slots in use
        self._keys = np.zeros(0, dtype=str)  # sorted "station␟sensor␟channel"
        self._key_slot = np.zeros(0, dtype=np.int64)
        self._stations = np.zeros(0, dtype=str)  # sorted station ids
        self._station_no = np.zeros(0, dtype=np.int64)
        self._slot_station = np.zeros(0, dtype=np.int64)
        self._slot_channel = np.zeros(0, dtype=np.int8)  # 0 a, 1 b, -1 other
        self._ts = np.zeros((0, depth), dtype=np.int64)  # right-aligned, oldest first
        self._val = np.zeros((0, depth), dtype=np.float64)
        self._verdict = np.zeros((0, depth), dtype=np.int8)  # _FLAT | _SPIKE | _AB
        self._qc = np.zeros((0, depth), dtype=np.int64)  # final qc as written; -1: not recorded
        self._slot_key = np.zeros(0, dtype=object)  # "station␟sensor␟channel" of each slot
        self._len = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        """Series seen so far."""
        return self._count

    # -- registry: exact string keys -> slot numbers, searchsorted on sorted arrays --
    @staticmethod
    def _find(sorted_keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(sorted_keys, wanted)
        found = np.zeros(wanted.size, dtype=bool)
        if sorted_keys.size:
            inside = pos < sorted_keys.size
            found[inside] = sorted_keys[pos[inside]] == wanted[inside]
        return pos, found

    def _station_numbers(self, stations: np.ndarray) -> np.ndarray:
        wanted, inverse = np.unique(stations, return_inverse=True)
        pos, found = self._find(self._stations, wanted)
        numbers = np.empty(wanted.size, dtype=np.int64)
        numbers[found] = self._station_no[pos[found]]
        fresh = np.flatnonzero(~found)
        numbers[fresh] = self._stations.size + np.arange(fresh.size)
        if fresh.size:
            keys = np.concatenate([self._stations, wanted[fresh]])
            nos = np.concatenate([self._station_no, numbers[fresh]])
            order = np.argsort(keys)
            self._stations, self._station_no = keys[order], nos[order]
        return numbers[inverse.reshape(-1)]

    def slots(self, station: np.ndarray, sensor: np.ndarray, channel: np.ndarray) -> np.ndarray:
        """Slot number of each distinct series (one row per series), registering new ones."""
        station = station.astype(str)
        channel = channel.astype(str)
        composite = np.strings.add(np.strings.add(station, _SEP), sensor.astype(str))
        composite = np.strings.add(np.strings.add(composite, _SEP), channel)
        pos, found = self._find(self._keys, composite)
        slots = np.empty(composite.size, dtype=np.int64)
        slots[found] = self._key_slot[pos[found]]
        fresh = np.flatnonzero(~found)
        if fresh.size:
            new = self._count + np.arange(fresh.size)
            slots[fresh] = new
            self._grow(self._count + fresh.size)
            self._slot_station[new] = self._station_numbers(station[fresh])
            self._slot_channel[new] = np.where(channel[fresh] == "a", 0,
                                               np.where(channel[fresh] == "b", 1, -1))
            self._len[new] = 0
            self._slot_key[new] = composite[fresh]
            self._count += fresh.size
            keys = np.concatenate([self._keys, composite[fresh]])
            key_slot = np.concatenate([self._key_slot, new])
            order = np.argsort(keys)
            self._keys, self._key_slot = keys[order], key_slot[order]
        return slots

    def _grow(self, needed: int) -> None:
        capacity = self._len.size
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity, 64)

        def grown(a: np.ndarray) -> np.ndarray:
            out = np.zeros((capacity, *a.shape[1:]), dtype=a.dtype)
            out[: a.shape[0]] = a
            return out

        self._slot_station = grown(self._slot_station)
        self._slot_channel = grown(self._slot_channel)
        self._ts, self._val, self._len = grown(self._ts), grown(self._val), grown(self._len)
        self._verdict = grown(self._verdict)
        self._qc = grown(self._qc)
        self._slot_key = grown(self._slot_key)

    # -- the assessment --------------------------------------------------------------
    def assess(
        self,
        series: Groups,
        station: np.ndarray,
        sensor: np.ndarray,
        channel: np.ndarray,
        ts: np.ndarray,
        value: np.ndarray,
        settings: QualitySettings,
    ) -> HistoryFlags:
        """Flat-line, spike and A/B masks for one batch, then remember its windows.

        Parameters
        ----------
        series : Groups
            The batch grouped by (station, sensor, channel) (:func:`factorize`).
        station, sensor, channel : array of str
            Per reading.
        ts : array of int
            End of each reading's window [s since the UTC epoch].
        value : array of float
            The PM2.5 value judged [µg/m³]; NaN = missing.
        settings : QualitySettings
            Parameters; ``settings.history_depth`` must not exceed ``self.depth``.
        """
        if settings.history_depth > self.depth:
            raise ValueError(f"settings need {settings.history_depth} windows of history, "
                             f"this history keeps {self.depth}")
        size = ts.size
        if size == 0:
            empty = np.zeros(0, dtype=bool)
            return HistoryFlags(empty, empty, empty)
        first = series.first
        series_slot = self.slots(station[first], sensor[first], channel[first])
        slot = series_slot[series.codes]

        # Stored windows of every series of the batch's stations: the batch's own
        # series for flat-line and spike, the other channel's for A/B.
        stations = np.unique(self._slot_station[series_slot])
        known = np.flatnonzero(np.isin(self._slot_station[: self._count], stations))
        stored = np.arange(self.depth) >= self.depth - self._len[known][:, None]
        r_slot = np.broadcast_to(known[:, None], stored.shape)[stored]
        r_ts, r_val = self._ts[known][stored], self._val[known][stored]
        r_verdict = self._verdict[known][stored]
        r_qc = self._qc[known][stored]

        all_slot = np.concatenate([r_slot, slot])
        all_ts = np.concatenate([r_ts, ts.astype(np.int64)])
        # Stored windows sort before batch copies of the same (series, ts); batch rows
        # keep their order, so the first copy of a duplicate is the one judged.
        order = _slot_ts_order(all_slot, all_ts)
        if order is None:
            arrival = np.concatenate([np.zeros(r_slot.size, np.int64), 1 + np.arange(size)])
            order = _packed_order(arrival, all_ts, all_slot)

        s_slot, s_ts = all_slot[order], all_ts[order]
        repeat = np.zeros(order.size, dtype=bool)
        repeat[1:] = (s_slot[1:] == s_slot[:-1]) & (s_ts[1:] == s_ts[:-1])
        if repeat.any():
            unique_of_sorted = np.cumsum(~repeat) - 1
            kept = order[~repeat]  # index into the concatenation of each unique window
            u_slot, u_ts = s_slot[~repeat], s_ts[~repeat]
        else:  # the usual batch: no redelivery, every window is unique
            unique_of_sorted, kept, u_slot, u_ts = None, order, s_slot, s_ts
        u_val = np.concatenate([r_val, value.astype(np.float64)])[kept]
        was_stored = kept < r_slot.size
        u_verdict = np.zeros(kept.size, dtype=np.int8)
        u_verdict[was_stored] = r_verdict[kept[was_stored]]
        u_qc = np.full(kept.size, -1, dtype=np.int64)  # batch windows: recorded after flags
        u_qc[was_stored] = r_qc[kept[was_stored]]

        batch_pos = np.empty(size, dtype=np.intp)  # sorted position of each batch row
        from_batch = order >= r_slot.size
        batch_pos[order[from_batch] - r_slot.size] = np.flatnonzero(from_batch)
        # the unique window each batch row is judged as
        judged = batch_pos if unique_of_sorted is None else unique_of_sorted[batch_pos]

        # New windows are judged now; stored ones (and their redeliveries) keep the
        # verdict they got when they were new, whatever of their past has been evicted.
        flat = flat_line(u_val, u_slot, settings.flat_line_windows)
        spike = hampel(u_val, u_slot, window=settings.hampel_window, k=settings.hampel_k,
                       min_deviation=settings.hampel_min_deviation,
                       min_periods=settings.hampel_min_periods, where=~was_stored)
        flat = np.where(was_stored, (u_verdict & _FLAT) != 0, flat)
        spike = np.where(was_stored, (u_verdict & _SPIKE) != 0, spike)
        ab = self._ab_pairs(u_slot, u_ts, u_val, settings) | ((u_verdict & _AB) != 0)

        # Stored windows that only now have a disagreeing partner, and a recorded qc.
        amend = np.flatnonzero(ab & was_stored & ((u_verdict & _AB) == 0) & (u_qc >= 0))
        amend_qc = u_qc[amend] | np.int64(Flag.AB_DISAGREEMENT)
        u_qc[amend] = amend_qc

        verdict = flat.view(np.int8) * np.int8(_FLAT)
        verdict |= spike.view(np.int8) * np.int8(_SPIKE)
        verdict |= ab.view(np.int8) * np.int8(_AB)
        column = self._remember(u_slot, u_ts, u_val, verdict, u_qc)
        return HistoryFlags(flat[judged], spike[judged], ab[judged], slot, column[judged],
                            u_slot[amend], u_ts[amend], amend_qc)

    def record_qc(self, flags: HistoryFlags, qc: np.ndarray) -> None:
        """Remember the final ``qc`` of the batch :meth:`assess` just judged (``flags``), so
        that a later amendment adds its bit to what was written. Call it before the next
        :meth:`assess`; windows not kept (older than ``depth``) are skipped."""
        kept = flags.column >= 0
        if kept.all():
            self._qc[flags.slot, flags.column] = qc
        else:
            self._qc[flags.slot[kept], flags.column[kept]] = qc[kept]

    def series_of(self, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(station, sensor, channel) of each slot, as str arrays."""
        if slot.size == 0:
            empty = np.zeros(0, dtype=str)
            return empty, empty, empty
        parts = np.array([key.split(_SEP) for key in self._slot_key[slot].tolist()], dtype=str)
        return parts[:, 0], parts[:, 1], parts[:, 2]

    def restore(self, station: np.ndarray, sensor: np.ndarray, channel: np.ndarray, ts: np.ndarray,
                value: np.ndarray, qc: np.ndarray) -> int:
        """Load windows judged before (by an earlier process, read back from the
        database) into an empty history; returns how many were kept.

        ``qc`` is each window's stored bitmask; its FLAT_LINE, SPIKE and
        AB_DISAGREEMENT bits become the stored verdicts, so a redelivered reading
        keeps its flags, and the next new windows are judged against this past as
        if the process had never stopped. Only the newest ``depth`` windows of each
        series are kept; duplicates of a (series, ts) count once.
        """
        if self._count:
            raise ValueError("restore() fills an empty history, before the first batch")
        if ts.size == 0:
            return 0
        groups = factorize(station, sensor, channel)
        first = groups.first
        slot = self.slots(station[first], sensor[first], channel[first])[groups.codes]
        ts = ts.astype(np.int64)
        order = np.lexsort((ts, slot))
        s_slot, s_ts = slot[order], ts[order]
        unique = np.ones(order.size, dtype=bool)
        unique[1:] = (s_slot[1:] != s_slot[:-1]) | (s_ts[1:] != s_ts[:-1])
        kept = order[unique]
        qc = qc.astype(np.int64)[kept]
        verdict = (((qc & Flag.FLAT_LINE) != 0).view(np.int8) * np.int8(_FLAT)
                   | ((qc & Flag.SPIKE) != 0).view(np.int8) * np.int8(_SPIKE)
                   | ((qc & Flag.AB_DISAGREEMENT) != 0).view(np.int8) * np.int8(_AB))
        self._remember(slot[kept], ts[kept], value.astype(np.float64)[kept], verdict, qc)
        return int(np.minimum(np.bincount(slot[kept]), self.depth).sum())

    def _ab_pairs(self, slot: np.ndarray, ts: np.ndarray, value: np.ndarray,
                  settings: QualitySettings) -> np.ndarray:
        """Windows whose station has both channels a and b at the same ts, disagreeing."""
        out = np.zeros(slot.size, dtype=bool)
        channel = self._slot_channel[slot]
        ab = np.flatnonzero(channel >= 0)
        if ab.size < 2 or channel[ab].min() == channel[ab].max():
            return out
        aligned = self._aligned_pairs(slot, ts)
        if aligned is not None:
            a_idx, b_idx = aligned
            bad = ab_disagreement(value[a_idx], value[b_idx], settings.ab_abs_limit,
                                  settings.ab_rel_limit)
            out[a_idx[bad]] = True
            out[b_idx[bad]] = True
            return out
        station = self._slot_station[slot[ab]]
        keys = (channel[ab].astype(np.int64), ts[ab], station)
        packed = _packed(*keys)
        if packed is not None:
            # channel is the lowest bit: an a/b pair is two neighbours one apart.
            order = np.argsort(packed)
            key = packed[order]
            pair = ((key[1:] - key[:-1]) == 1) & ((key[:-1] & 1) == 0)
        else:
            order = np.lexsort(keys)
            st, t, ch = station[order], keys[1][order], keys[0][order]
            pair = (st[:-1] == st[1:]) & (t[:-1] == t[1:]) & (ch[:-1] == 0) & (ch[1:] == 1)
        a_idx, b_idx = ab[order[:-1][pair]], ab[order[1:][pair]]
        bad = ab_disagreement(value[a_idx], value[b_idx], settings.ab_abs_limit,
                              settings.ab_rel_limit)
        out[a_idx[bad]] = True
        out[b_idx[bad]] = True
        return out

    def _aligned_pairs(self, slot: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The a/b pairs of :meth:`_ab_pairs` without a sort, in the usual case, else None.

        Applies when the rows are sorted by slot and strictly by ts within a slot, each
        station has at most one series per channel, and both channels of a station hold
        the same ts: then the pairs are the two series' rows side by side.
        """
        size = slot.size
        first = np.ones(size, dtype=bool)
        first[1:] = slot[1:] != slot[:-1]
        if not ((ts[1:] > ts[:-1]) | first[1:]).all():
            return None
        starts = np.flatnonzero(first)
        seg_slot = slot[starts]
        if (seg_slot[1:] <= seg_slot[:-1]).any():
            return None
        lengths = np.diff(np.append(starts, size))
        seg_channel = self._slot_channel[seg_slot]
        segs = np.flatnonzero(seg_channel >= 0)
        key = self._slot_station[seg_slot[segs]] * 2 + seg_channel[segs]
        by_key = np.argsort(key, kind="stable")
        key, segs = key[by_key], segs[by_key]
        if (key[1:] == key[:-1]).any():
            return None  # a station with two series on one channel
        pair = ((key[1:] - key[:-1]) == 1) & ((key[:-1] & 1) == 0)
        seg_a, seg_b = segs[:-1][pair], segs[1:][pair]
        count = lengths[seg_a]
        if (count != lengths[seg_b]).any():
            return None
        within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        a_idx = np.repeat(starts[seg_a], count) + within
        b_idx = np.repeat(starts[seg_b], count) + within
        if not (ts[a_idx] == ts[b_idx]).all():
            return None
        return a_idx, b_idx

    def _remember(self, slot: np.ndarray, ts: np.ndarray, value: np.ndarray,
                  verdict: np.ndarray, qc: np.ndarray) -> np.ndarray:
        """Keep the newest ``depth`` windows of each series in ``slot`` (sorted by slot, ts);
        returns the column each window is kept in, -1 for those not kept."""
        if slot.size == 0:
            return np.zeros(0, dtype=np.int64)
        index = np.arange(slot.size)
        first = np.ones(slot.size, dtype=bool)
        first[1:] = slot[1:] != slot[:-1]
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], slot.size)
        segment = np.cumsum(first) - 1
        from_end = ends[segment] - index - 1
        keep = from_end < self.depth
        column = self.depth - 1 - from_end[keep]
        self._ts[slot[keep], column] = ts[keep]
        self._val[slot[keep], column] = value[keep]
        self._verdict[slot[keep], column] = verdict[keep]
        self._qc[slot[keep], column] = qc[keep]
        self._len[slot[starts]] = np.minimum(ends - starts, self.depth)
        where = np.full(slot.size, -1, dtype=np.int64)
        where[keep] = column
        return where
