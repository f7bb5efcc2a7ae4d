"""The batch step: held MQTT messages in, one prepared write out. Pure, no broker needed.

Owns :class:`Held` (a message the session holds unacknowledged), :class:`Prepared`
(what the writer needs for one batch: the line protocol, the dead letters, the counts
for the metrics) and :func:`prepare`, which sorts the messages by topic kind
(:func:`civicair.schema.contract.topic_kind`) and runs the pure cores on them:
readings are decoded (:mod:`ingest.columns`), cleaned (:mod:`ingest.clean`) and encoded
(:mod:`ingest.lineprotocol`); station meta and status become ``station`` points
(:mod:`ingest.meta`); whatever breaks the contract becomes a dead letter.

No MQTT, InfluxDB, metrics, thread or clock here (``now`` is an argument): the session
(:mod:`ingest.session`) gives it messages, the consumer (:mod:`ingest.consumer`) times
it and hands the result to the writer (:mod:`ingest.writer`). The only state it touches
is the :class:`~ingest.clean.Cleaner` it is given (the per-series quality history).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from civicair.schema import contract
from civicair.schema.errors import ContractError
from civicair.schema.qc import FUTURE_TOLERANCE_S, Flag
from ingest import meta
from ingest.clean import Cleaner
from ingest.columns import DeadLetter, decode
from ingest.confirm import KeyColumns
from ingest.lineprotocol import encode, encode_amendments
from ingest.marks import batch_marks

#: Name (lower case) and value of every ``qc`` bit, as the flag metric labels them.
FLAG_BITS = {f.name.lower(): int(f.value) for f in Flag if f.name}


class Held(NamedTuple):
    """A message received and not yet acknowledged (a tuple: one is made per message on
    paho's network thread, where a tuple is the cheapest record)."""

    topic: str
    payload: bytes
    #: MQTT packet id, valid on the connection it came on only.
    mid: int
    qos: int
    #: Which connection (counted from 1) it came on: see :meth:`ingest.session.Session.ack`.
    generation: int
    #: Readings it holds, estimated without decoding (:func:`estimate_readings`), for batch sizing.
    readings: int


def estimate_readings(payload: bytes) -> int:
    """Readings in a payload, roughly: an array holds one ``"ts"`` per reading.

    Batches are sized in readings; the exact count is known after decoding."""
    return max(payload.count(b'"ts"'), 1) if payload[:1] == b"[" else 1


@dataclass(slots=True)
class Prepared:
    """One batch, ready for the writer."""

    messages: list[Held]
    #: Line protocol of every reading, amendment and station point (b"" when none).
    lines: bytes
    #: Readings decoded from the messages that kept the contract [count].
    readings: int
    #: Station meta and status points [count].
    station_points: int
    #: The newest reading ``ts`` not more than FUTURE_TOLERANCE_S ahead of ``now``, if any.
    newest_ts: int | None
    dead: list[DeadLetter]
    #: Readings with each ``qc`` bit set (names as :data:`FLAG_BITS`), amendments included.
    flagged: dict[str, int] = field(default_factory=dict)
    #: (station, channel, boot, seq) columns of the readings, for the stored confirmations
    #: (:mod:`ingest.confirm`); None when the batch holds no reading.
    keys: KeyColumns | None = None


def flag_counts(qc: np.ndarray | None) -> dict[str, int]:
    """Readings with each bit set in a batch's ``qc`` column, one vectorised count per bit;
    bits no reading has are left out."""
    if qc is None or not len(qc):
        return {}
    counts = {name: int(np.count_nonzero(qc & bit)) for name, bit in FLAG_BITS.items()}
    return {name: n for name, n in counts.items() if n}


def station_line(topic: str, payload: bytes, now: int, dead: list[DeadLetter]) -> bytes | None:
    """The ``station`` point of a meta or status message, or None (a dead letter is
    appended to ``dead`` when it breaks the contract)."""
    if not payload:
        return None  # an empty retained message clears the topic: nothing to record
    try:
        station = contract.station_from_topic(topic)
        kind = contract.topic_kind(topic)
        if kind == contract.META:
            return meta.meta_line(station, payload, now)
        if kind == contract.STATUS:
            return meta.status_line(station, payload, now)
        raise ContractError(f"topic {topic!r} is not a civicair/v1 readings, meta or status topic")
    except (ContractError, meta.MetaError) as exc:
        dead.append(DeadLetter(topic, payload, str(exc)))
        return None


def prepare(messages: Sequence[Held], cleaner: Cleaner, now: int, max_future_s: int,
            marks: bool = False) -> Prepared:
    """Decode, clean and encode one batch of messages, in the order given.

    Parameters
    ----------
    messages : sequence of Held
        Readings, meta and status messages, in the order received.
    cleaner : Cleaner
        Flags and corrections; its per-series history remembers this batch.
    now : int
        The ingest's clock [s since the UTC epoch]: station points' time, the
        future-timestamp flag, and the dead-letter limit below.
    max_future_s : int
        A message with a reading further ahead of ``now`` than this is a dead letter [s].
    marks : bool
        Append the rollup dirty marks of the batch, stamped ``now`` (ingest/marks.py).
    """
    readings_msgs: list[tuple[str, bytes]] = []
    station_lines: list[bytes] = []
    dead: list[DeadLetter] = []
    for held in messages:
        if contract.topic_kind(held.topic) == contract.READINGS:
            readings_msgs.append((held.topic, held.payload))
        else:
            line = station_line(held.topic, held.payload, now, dead)
            if line:
                station_lines.append(line)
    columns, bad = decode(readings_msgs, latest_ts=now + max_future_s)
    dead.extend(bad)
    lines = b""
    newest = None
    flagged: dict[str, int] = {}
    keys = None
    if len(columns):
        keys = (columns.station, columns.channel, columns.ints["boot"], columns.ints["seq"])
        cleaner.clean(columns, now=now)
        lines = encode(columns)
        if columns.amended is not None:  # an A/B pair completed across batches
            lines += encode_amendments(columns.amended)
        if marks:  # which hours the rollup worker must redo
            lines += batch_marks(columns, now)
        # Lag is measured against live readings: one from a clock years ahead must not
        # pin the gauge below zero for ever.
        ts = columns.ints["ts"]
        live = ts[ts <= now + FUTURE_TOLERANCE_S]
        newest = int(live.max()) if len(live) else None
        flagged = flag_counts(columns.derived.get("qc"))
        if columns.amended is not None:  # written unflagged before, flagged now
            flagged["ab_disagreement"] = flagged.get("ab_disagreement", 0) + len(columns.amended)
    return Prepared(list(messages), lines + b"".join(station_lines), len(columns), len(station_lines),
                    newest, dead, flagged, keys)


def prepare_one_by_one(messages: Sequence[Held], cleaner: Cleaner, now: int, max_future_s: int,
                       marks: bool = False) -> Prepared:
    """:func:`prepare` message by message, after it raised on the whole batch (a bug in a
    pure core): the message that triggers it becomes a dead letter with the error (class
    ``internal``), the rest are prepared as usual. Never raises."""
    whole = Prepared(list(messages), b"", 0, 0, None, [])
    lines = []
    keys: list[KeyColumns] = []
    for held in messages:
        try:
            p = prepare([held], cleaner, now, max_future_s, marks)
        except Exception as exc:
            reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
            whole.dead.append(DeadLetter(held.topic, held.payload, reason))
            continue
        lines.append(p.lines)
        if p.keys is not None:
            keys.append(p.keys)
        whole.readings += p.readings
        whole.station_points += p.station_points
        whole.dead.extend(p.dead)
        for name, n in p.flagged.items():
            whole.flagged[name] = whole.flagged.get(name, 0) + n
        if p.newest_ts is not None:
            whole.newest_ts = max(whole.newest_ts or 0, p.newest_ts)
    whole.lines = b"".join(lines)
    if keys:
        station, channel, boot, seq = (np.concatenate(column) for column in zip(*keys, strict=True))
        whole.keys = (station, channel, boot, seq)
    return whole
