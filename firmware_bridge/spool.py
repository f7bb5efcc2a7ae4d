"""Durable on-disk spool: every reading is here before it goes to the broker.

SQLite in WAL mode. A reading is appended with :meth:`Spool.put` and deleted
with :meth:`Spool.ack` only after the broker acknowledged it (QoS 1 PUBACK), so
a power cut, a SIGKILL or a week without Wi-Fi loses nothing that fits the
bounds. Bounds (age, count) evict the oldest first and count what they evicted.

The spool also keeps the bridge's small persistent state (boot counter, last
sequence number) so that ``seq`` never repeats across restarts.
"""

from __future__ import annotations

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
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.evicted = 0
        self._lock = threading.Lock()
        # isolation_level=None: autocommit; each statement is its own durable transaction.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a reading survives a power cut
        self._db.executescript(_SCHEMA)
        self.evicted = self.get_state("evicted")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- readings ------------------------------------------------------------
    def put(self, topic: str, payload: bytes, now: float | None = None,
            state: dict[str, int] | None = None) -> int:
        """Append a reading; ``state`` (e.g. the next ``seq``) is saved in the same
        transaction, so a SIGKILL can never keep one without the other."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO spool (topic, payload, created) VALUES (?, ?, ?)",
                    (topic, payload, now),
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
        """Up to ``limit`` rows with id > ``last_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM spool WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [SpoolRow(r[0], r[1], bytes(r[2])) for r in rows]

    def ack(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])

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
