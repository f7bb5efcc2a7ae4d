"""Stored confirmations: which readings of a written batch each station may now forget.

Pure: the columns of a batch (station, channel, boot, seq) in, per station the
coalesced ``seq`` ranges per channel and boot out, then the MQTT messages (topic,
payload) of wire contract v1 (:func:`civicair.schema.contract.encode_stored`). The
consumer publishes them, QoS 1, after InfluxDB accepted the batch; it owns the MQTT
client, this module owns no I/O.

Cost: one pass numbering the batch's stations and one ``lexsort`` over four integer
columns: about 2 ms for a batch of 5,000 readings on a busy 2-core machine (0.4 µs a reading, beside the
ingest's 15-60 µs), and one message per station per batch however many readings it held.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import orjson

from civicair.schema import contract
from civicair.schema.errors import ContractError

#: A reading line of measurement ``pm`` as :mod:`ingest.lineprotocol` writes it: the
#: station and channel tags, and the integer fields ``seq`` and ``boot``.
_LINE_STATION = re.compile(rb"^pm,station=([a-z0-9-]+),")
_LINE_CHANNEL = re.compile(rb",channel=([ab])[ ,]")
_LINE_SEQ = re.compile(rb"[ ,]seq=(\d+)i[ ,]")
_LINE_BOOT = re.compile(rb"[ ,]boot=(\d+)i[ ,]")

#: One reading's identity: station, channel, boot, seq.
ReadingKey = tuple[str, str, int, int]
#: The same as columns of a batch: station, channel (str objects), boot, seq (int64).
KeyColumns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def stored_ranges(station: np.ndarray, channel: np.ndarray, boot: np.ndarray, seq: np.ndarray,
                  exclude: Iterable[ReadingKey] = ()) -> dict[str, contract.StoredRanges]:
    """Per station, the coalesced inclusive ``seq`` ranges per (channel, boot) of a batch.

    The four arrays are columns of one batch (one row per reading, any order, repeats
    allowed). ``exclude``: readings that were not stored after all (lines InfluxDB
    refused); a station with an excluded reading keeps its other ranges.
    """
    if not len(station):
        return {}
    # Station ids to small integers, in order of appearance: a dict does it in one pass,
    # about three times faster than np.unique, which sorts the Python strings.
    index: dict[str, int] = {}
    number = index.setdefault
    station_idx = np.array([number(s, len(index)) for s in station.tolist()], dtype=np.int64)
    names = list(index)
    channel_idx = (channel == "b").astype(np.int64)
    keep = np.ones(len(station), dtype=bool)
    for x_station, x_channel, x_boot, x_seq in exclude:  # rare (a line InfluxDB refused): a loop is fine
        keep &= ~((station == x_station) & (channel == x_channel) & (boot == x_boot) & (seq == x_seq))
    keys = (seq[keep], boot[keep], channel_idx[keep], station_idx[keep])
    order = np.lexsort(keys)  # last key first: station, channel, boot, seq
    sq, bt, ch, st = (k[order] for k in keys)
    if not len(sq):
        return {}
    same_series = (st[1:] == st[:-1]) & (ch[1:] == ch[:-1]) & (bt[1:] == bt[:-1])
    step = sq[1:] - sq[:-1]
    # A range starts where the series changes or seq jumps by more than one (a repeat,
    # step 0, stays in its range).
    starts = np.flatnonzero(np.concatenate(([True], ~same_series | (step > 1))))
    ends = np.append(starts[1:], len(sq)) - 1
    out: dict[str, contract.StoredRanges] = {}
    for s, e, station_i, ch_i, boot_v in zip(starts.tolist(), ends.tolist(), st[starts].tolist(),
                                              ch[starts].tolist(), bt[starts].tolist(), strict=True):
        per_station = out.setdefault(str(names[station_i]), {})
        per_station.setdefault((contract.CHANNELS[ch_i], boot_v), []).append((int(sq[s]), int(sq[e])))
    return out


def messages(ranges: dict[str, contract.StoredRanges],
             max_ranges: int = contract.MAX_STORED_RANGES) -> list[tuple[str, bytes]]:
    """The (topic, payload) of each confirmation: one per station, or more where a
    station's ranges exceed what one message may hold (a batch with many gaps)."""
    out = []
    for station, per_series in ranges.items():
        topic = contract.stored_topic(station)
        chunk: contract.StoredRanges = {}
        count = 0
        for key, spans in per_series.items():
            for i in range(0, len(spans), max_ranges):
                part = spans[i:i + max_ranges]
                if count + len(part) > max_ranges:
                    out.append((topic, contract.encode_stored(station, chunk)))
                    chunk, count = {}, 0
                chunk.setdefault(key, []).extend(part)
                count += len(part)
        if chunk:
            out.append((topic, contract.encode_stored(station, chunk)))
    return out


def rejected_reading(line: bytes) -> ReadingKey | str | None:
    """What a line InfluxDB refused means for the confirmations: the reading's key;
    only its station (a reading line whose seq or boot cannot be read: confirm nothing
    of that station in this batch); or None (not a reading line: an amendment or a
    station point, whose reading, if any, was stored before)."""
    m_station = _LINE_STATION.match(line)
    if not m_station or b"seq=" not in line:
        return None
    station = m_station.group(1).decode()
    channel, seq, boot = _LINE_CHANNEL.search(line), _LINE_SEQ.search(line), _LINE_BOOT.search(line)
    if not (channel and seq and boot):
        return station
    return station, channel.group(1).decode(), int(boot.group(1)), int(seq.group(1))


def dead_readings(dead: Iterable[tuple[str, bytes]]) -> list[ReadingKey]:
    """The readings of dead-lettered messages (topic, payload) that name themselves: each
    JSON object of the payload with this topic's station, a channel and integer boot and
    seq. A resend of such a reading would be refused again: once the dead letter is
    kept, it is confirmed like a stored reading, so the bridge stops resending it."""
    out: list[ReadingKey] = []
    for topic, payload in dead:
        if contract.topic_kind(topic) != contract.READINGS:
            continue
        try:
            station = contract.station_from_topic(topic)
            doc = orjson.loads(payload)
        except (ContractError, orjson.JSONDecodeError):
            continue
        for item in doc if isinstance(doc, list) else [doc]:
            if not isinstance(item, dict) or item.get("station") != station:
                continue
            channel, boot, seq = item.get("channel"), item.get("boot"), item.get("seq")
            if (channel in contract.CHANNELS and type(boot) is int and type(seq) is int
                    and 0 <= boot <= contract.MAX_INT and 0 <= seq <= contract.MAX_INT):
                out.append((station, channel, boot, seq))
    return out


def for_batch(keys: KeyColumns | None, rejected_lines: Iterable[bytes] = (),
              dead: Iterable[ReadingKey] = ()) -> list[tuple[str, bytes]]:
    """The confirmations of a written batch, as :func:`messages`: the readings of
    ``keys`` (the batch's columns) and ``dead`` (kept dead letters), without those of
    ``rejected_lines`` (lines InfluxDB refused and that were not kept)."""
    exclude: list[ReadingKey] = []
    unknown: set[str] = set()
    for line in rejected_lines:
        got = rejected_reading(line)
        if isinstance(got, tuple):
            exclude.append(got)
        elif got is not None:
            unknown.add(got)
    dead = list(dead)
    columns: list[KeyColumns] = [keys] if keys is not None else []
    if dead:
        st, ch, bt, sq = zip(*dead, strict=True)
        columns.append((np.array(st, dtype=object), np.array(ch, dtype=object),
                        np.array(bt, dtype=np.int64), np.array(sq, dtype=np.int64)))
    if not columns:
        return []
    if len(columns) == 1:
        station, channel, boot, seq = columns[0]
    else:
        station, channel, boot, seq = (np.concatenate(c) for c in zip(*columns, strict=True))
    ranges = stored_ranges(station, channel, boot, seq, exclude)
    for name in unknown:
        ranges.pop(name, None)
    return messages(ranges)
