"""The dead letter: messages and lines the ingest cannot store, kept as evidence.

Owns where a dead letter goes (the JSON-lines file, whole, and the dead-letter topic,
its payload cut to :data:`DEADLETTER_TOPIC_PAYLOAD` bytes), the record's fields, the
per-class count and the rate-limited log line. It publishes through the callable it is
given (the session's client) and must not decide what is a dead letter: the batch step
(:mod:`ingest.batch`) and the writer (:mod:`ingest.writer`) do.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from civicair.schema import contract
from ingest.columns import DeadLetter
from ingest.metrics import IngestMetrics, reason_class

log = logging.getLogger("civicair.ingest")

#: Bytes of a dead letter's payload copied to the dead-letter topic (the file keeps all of it).
DEADLETTER_TOPIC_PAYLOAD = 4096
#: At most one dead-letter summary line per this many seconds (no per-message logs).
DEADLETTER_LOG_EVERY_S = 60.0


class DeadLetterSink:
    """Writes dead letters to a file and a topic, counts them, and says so once a minute.

    Parameters
    ----------
    path : Path
        The JSON-lines file, appended to.
    publish : callable
        ``publish(topic, payload)``: sends one record to the broker (QoS 1, not retained).
    metrics : IngestMetrics
        Counts ``deadlettered{reason}`` and ``deadletter_file_errors``.

    Used from the writer thread only.
    """

    def __init__(self, path: Path, publish: Callable[[str, bytes], object], metrics: IngestMetrics) -> None:
        self.path = path
        self._publish = publish
        self._metrics = metrics
        self._logged_at = 0.0
        self._since_log = 0
        #: Appends to the file that failed (each a batch of dead letters kept on the topic only).
        self.failed_appends = 0

    def __call__(self, dead: list[DeadLetter]) -> None:
        """Each dead letter to the file (whole payload) and to the dead-letter topic (the
        payload cut to :data:`DEADLETTER_TOPIC_PAYLOAD` bytes, with its length and sha256).

        The topic copy is bounded because a station controls its payload: escaped, a
        payload near the broker's ``max_packet_size`` would make a record above it, and the
        broker would drop the ingest's connection on every attempt to publish it. A file
        that cannot be written (disk full, a directory in its place) is logged and the
        message is still acknowledged: a dead letter must never stop the readings."""
        if not dead:
            return
        now = time.time()
        lines = []
        for d in dead:
            cls = reason_class(d.reason)
            self._metrics.deadlettered.inc(1, cls)
            head = {"received": now, "topic": d.topic, "class": cls, "reason": d.reason}
            lines.append(orjson.dumps({**head, "payload": d.payload.decode("utf-8", "backslashreplace")}))
            short = d.payload[:DEADLETTER_TOPIC_PAYLOAD]
            self._publish(contract.DEADLETTER_TOPIC, orjson.dumps({
                **head, "payload": short.decode("utf-8", "backslashreplace"),
                "payload_bytes": len(d.payload), "payload_truncated": len(short) < len(d.payload),
                "payload_sha256": hashlib.sha256(d.payload).hexdigest()}))
        try:
            with self.path.open("ab") as f:
                f.write(b"\n".join(lines) + b"\n")
        except OSError as exc:
            self._metrics.deadletter_file_errors.inc(len(dead))
            self.failed_appends += 1
            log.error("could not append %d dead letter(s) to %s (%s); they went to %s only",
                      len(dead), self.path, exc, contract.DEADLETTER_TOPIC)
        self._since_log += len(dead)
        mono = time.monotonic()
        if mono - self._logged_at >= DEADLETTER_LOG_EVERY_S:
            log.warning("%d message(s) dead-lettered to %s and %s since the last report; latest: %s",
                        self._since_log, self.path, contract.DEADLETTER_TOPIC, dead[-1].reason)
            self._logged_at, self._since_log = mono, 0
