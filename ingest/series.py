"""The per-series history: the last windows of every station/sensor/channel, across batches.

Owns :class:`SeriesHistory` (a small ring of recent windows per series, with the
verdicts and final ``qc`` they got) and :class:`HistoryFlags` (what one batch's
assessment returns): the flat-line, spike and A/B checks judge a window against the
windows before it, which may have come in earlier batches. It calls the pure kernels
of :mod:`ingest.kernels` on the union of stored and new windows and the sorts of
:mod:`ingest.grouping`.

Pure numpy, in memory: no I/O, no clock. Filling it from the database after a restart
is :mod:`ingest.restore`'s job; wiring it to a batch is :mod:`ingest.clean`'s.

Over 400 lines on purpose: it is one class whose methods share the private slot arrays
(registry, ring buffers, verdicts); split, they would have to expose that layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from civicair.schema.qc import Flag
from ingest.grouping import Groups, factorize, pack_keys, packed_order, slot_ts_order
from ingest.kernels import ab_disagreement, flat_line, hampel
from ingest.quality import QualitySettings

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
        order = slot_ts_order(all_slot, all_ts)
        if order is None:
            arrival = np.concatenate([np.zeros(r_slot.size, np.int64), 1 + np.arange(size)])
            order = packed_order(arrival, all_ts, all_slot)

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
        packed = pack_keys(*keys)
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
