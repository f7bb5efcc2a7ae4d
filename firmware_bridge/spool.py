"""Durable on-disk spool: every reading is here before it goes to the broker.

SQLite in WAL mode. A reading is appended with :meth:`Spool.put`. What happens on the
broker's PUBACK (:meth:`Spool.published`) depends on the server:

* until the ingest has ever confirmed a reading as stored in InfluxDB (an older ingest,
  or confirmations off), the PUBACK deletes it, as before;
* once one stored confirmation arrived (``civicair/v1/{station}/stored``, see
  docs/delivery.md), the PUBACK only marks it sent; :meth:`Spool.confirm` deletes it
  when a confirmation covers it, and a reading sent but not confirmed is due again
  after ``resend_after_s``, then after twice that, and so on up to ``resend_max_s``.

So a power cut, a SIGKILL, a week without Wi-Fi or a broker that loses its queue loses
nothing that fits the bounds. Bounds (age, count) evict the oldest first, sent and
unconfirmed readings included, and count what they evicted.

The spool also keeps the bridge's small persistent state (boot counter, last
sequence number) so that ``seq`` never repeats across restarts.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("civicair.bridge.spool")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: Columns added for stored confirmations (a spool of an older bridge gets them on open;
#: its rows keep NULL keys and are deleted on PUBACK, as that bridge would have).
#: channel, boot, seq: the reading's key (NULL for a payload that is not a reading);
#: sent: time of the last PUBACK while the server confirms (NULL: never acknowledged);
#: due: when a sent, unconfirmed reading is to be sent again; attempts: PUBACKs so far.
_COLUMNS = {
    "channel": "TEXT",
    "boot": "INTEGER",
    "seq": "INTEGER",
    "sent": "REAL",
    "due": "REAL NOT NULL DEFAULT 0",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
}
_INDEXES = """
CREATE INDEX IF NOT EXISTS spool_reading ON spool (channel, boot, seq);
CREATE INDEX IF NOT EXISTS spool_due ON spool (due) WHERE sent IS NOT NULL;
"""

#: Spool defaults of the resend rule: well above the ingest's batch age (1 s) and the
#: time it takes to restart, so a resend is the exception.
RESEND_AFTER_S = 300.0
RESEND_MAX_S = 3600.0
#: A bridge that has heard no stored confirmation for this long goes back to deleting on
#: PUBACK (the server was replaced by one that does not confirm). The ingest's broker
#: session lasts 7 days (ingest/settings.py): an ingest away longer has lost its queue.
CONFIRM_FORGET_S = 7 * 86400.0


def resend_delay(attempts: int, after_s: float = RESEND_AFTER_S, max_s: float = RESEND_MAX_S) -> float:
    """Seconds from the ``attempts``-th PUBACK of a reading to its next resend, if no
    stored confirmation covered it meanwhile: ``after_s``, doubling, at most ``max_s``."""
    return min(after_s * 2.0 ** max(attempts - 1, 0), max_s)


def reading_key(payload: bytes) -> tuple[str, int, int] | None:
    """(channel, boot, seq) of a reading payload, or None if it is not one."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    channel, boot, seq = doc.get("channel"), doc.get("boot"), doc.get("seq")
    if isinstance(channel, str) and type(boot) is int and type(seq) is int:
        return channel, boot, seq
    return None


@dataclass(frozen=True, slots=True)
class SpoolRow:
    id: int
    topic: str
    payload: bytes


class Spool:
    """Thread-safe: the sampler thread appends, the MQTT thread acknowledges."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_rows: int = 500_000,
        max_age_s: float = 30 * 86400,
        resend_after_s: float = RESEND_AFTER_S,
        resend_max_s: float = RESEND_MAX_S,
        confirm_forget_s: float = CONFIRM_FORGET_S,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.resend_after_s = resend_after_s
        self.resend_max_s = max(resend_max_s, resend_after_s)
        self.confirm_forget_s = confirm_forget_s
        self.evicted = 0
        self._lock = threading.Lock()
        # isolation_level=None: autocommit; each statement is its own durable transaction.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a reading survives a power cut
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(spool)")}
        for name, decl in _COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE spool ADD COLUMN {name} {decl}")
        self._db.executescript(_INDEXES)
        self.evicted = self.get_state("evicted")
        #: Wall-clock time of the last stored confirmation (0: never), persisted.
        self.confirmed_at = float(self.get_state("confirmed_at"))
        self.confirmed_readings = 0  # deleted by confirmations, this process
        self._closed = False
        self._last_unconfirmed = (0, 0.0)
    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._closed = True

    # -- readings ------------------------------------------------------------
    def put(self, topic: str, payload: bytes, now: float | None = None,
            state: dict[str, int] | None = None) -> int:
        """Append a reading; ``state`` (e.g. the next ``seq``) is saved in the same
        transaction, so a SIGKILL can never keep one without the other."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                reading = reading_key(payload)
                channel, boot, seq = reading if reading else (None, None, None)
                cur = self._db.execute(
                    "INSERT INTO spool (topic, payload, created, channel, boot, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (topic, payload, now, channel, boot, seq),
                )
                for key, value in (state or {}).items():
                    self._set_state_locked(key, value)
                evicted = self._enforce_bounds(now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if evicted:
            log.warning("spool full: evicted %d oldest readings (%d in total); bounds: %d rows, %.0f days",
                        evicted, self.evicted, self.max_rows, self.max_age_s / 86400)
        return int(cur.lastrowid or 0)

    def after(self, last_id: int, limit: int) -> list[SpoolRow]:
        """Up to ``limit`` rows with id > ``last_id`` never acknowledged by the broker,
        oldest first (sent ones wait for :meth:`due`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM spool WHERE id > ? AND sent IS NULL ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [SpoolRow(r[0], r[1], bytes(r[2])) for r in rows]

    def ack(self, ids: list[int]) -> None:
        """Delete these rows."""
        if not ids:
            return
        with self._lock:
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])

    # -- stored confirmations -------------------------------------------------------
    def confirming(self, now: float | None = None) -> bool:
        """Whether the server confirms what it stored (a confirmation arrived, and not
        longer than ``confirm_forget_s`` ago): then a PUBACK no longer deletes."""
        now = time.time() if now is None else now
        return self.confirmed_at > 0 and now - self.confirmed_at < self.confirm_forget_s

    def published(self, ids: list[int], now: float | None = None) -> None:
        """The broker acknowledged these rows (PUBACK). While the server confirms, a
        reading stays, marked sent and due again after the resend delay; otherwise (and
        for a row that is not a reading) it is deleted, as before confirmations."""
        if not ids:
            return
        now = time.time() if now is None else now
        if not self.confirming(now):
            self.ack(ids)
            return
        params = [(i,) for i in ids]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM spool WHERE id = ? AND seq IS NULL", params)
                # due = now + after * 2^attempts (attempts before this PUBACK), capped.
                self._db.executemany(
                    "UPDATE spool SET sent = ?, attempts = attempts + 1, "
                    "due = ? + min(? * (1 << min(attempts, 30)), ?) WHERE id = ?",
                    [(now, now, self.resend_after_s, self.resend_max_s, i) for i in ids])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def confirm(self, ranges: dict[tuple[str, int], list[tuple[int, int]]], now: float | None = None) -> int:
        """A stored confirmation: delete every reading it covers (sent or not: a resend
        may be in flight), remember that the server confirms; how many were deleted.

        The first confirmation after a silence longer than ``resend_after_s`` (the
        ingest is back) brings every later resend forward to ``resend_after_s`` from
        now: what it does not confirm by then is resent, not left to a long back-off.
        """
        now = time.time() if now is None else now
        params = [(channel, boot, lo, hi) for (channel, boot), spans in ranges.items() for lo, hi in spans]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany(
                    "DELETE FROM spool WHERE channel = ? AND boot = ? AND seq BETWEEN ? AND ?", params)
                deleted = self._db.total_changes - before
                if now - self.confirmed_at > self.resend_after_s:
                    self._db.execute("UPDATE spool SET due = ? WHERE sent IS NOT NULL AND due > ?",
                                     (now + self.resend_after_s, now + self.resend_after_s))
                self._set_state_locked("confirmed_at", int(now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.confirmed_at = now
            self.confirmed_readings += deleted
        return deleted

    def next_due(self) -> float | None:
        """When the next sent, unconfirmed reading is due for a resend (None: none is)."""
        with self._lock:
            row = self._db.execute("SELECT min(due) FROM spool WHERE sent IS NOT NULL").fetchone()
        return None if row[0] is None else float(row[0])

    def due(self, now: float, after_id: int, limit: int) -> list[SpoolRow]:
        """Up to ``limit`` sent, unconfirmed rows due by ``now`` with id > ``after_id``,
        oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM spool WHERE id > ? AND sent IS NOT NULL AND due <= ? "
                "ORDER BY id LIMIT ?", (after_id, now, limit)).fetchall()
        return [SpoolRow(r[0], r[1], bytes(r[2])) for r in rows]

    def resending(self, ids: list[int], now: float | None = None) -> None:
        """These rows were handed to MQTT again: not due before ``resend_after_s`` from now
        (their PUBACK sets the back-off)."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.executemany("UPDATE spool SET due = ? WHERE id = ?",
                                 [(now + self.resend_after_s, i) for i in ids])

    def unconfirmed(self, now: float | None = None) -> tuple[int, float]:
        """Readings sent and awaiting a stored confirmation, and the age of the oldest [s]
        (after :meth:`close`, the figures of the last call before it)."""
        now = time.time() if now is None else now
        with self._lock:
            if self._closed:
                return self._last_unconfirmed
            count, oldest = self._db.execute(
                "SELECT count(*), min(created) FROM spool WHERE sent IS NOT NULL").fetchone()
        self._last_unconfirmed = int(count), 0.0 if oldest is None else max(now - oldest, 0.0)
        return self._last_unconfirmed

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def oldest_age(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute("SELECT min(created) FROM spool").fetchone()
        return 0.0 if row[0] is None else now - row[0]

    def _enforce_bounds(self, now: float) -> int:
        # Called with the lock held, inside the put transaction.
        evicted = self._db.execute(
            "DELETE FROM spool WHERE created < ?", (now - self.max_age_s,)
        ).rowcount
        excess = (
            int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0]) - self.max_rows
        )
        if excess > 0:
            evicted += self._db.execute(
                "DELETE FROM spool WHERE id IN (SELECT id FROM spool ORDER BY id LIMIT ?)",
                (excess,),
            ).rowcount
        if evicted:
            self.evicted += evicted
            self._set_state_locked("evicted", self.evicted)
        return evicted

    # -- small persistent state ---------------------------------------------------
    def get_state(self, key: str, default: int = 0) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def set_state(self, key: str, value: int) -> None:
        with self._lock:
            self._set_state_locked(key, value)

    def _set_state_locked(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def next_boot(self) -> int:
        boot = self.get_state("boot") + 1
        self.set_state("boot", boot)
        return boot
