"""Spool: durable across reopen, acked rows gone, bounds evict oldest first."""

from __future__ import annotations

from firmware_bridge.spool import Spool


def test_rows_survive_reopen_until_acked(tmp_path):
    path = tmp_path / "spool.sqlite3"
    s = Spool(path)
    ids = [s.put("t", f"r{i}".encode()) for i in range(5)]
    s.ack(ids[:2])
    s.close()
    s = Spool(path)
    assert [r.payload for r in s.after(0, 10)] == [b"r2", b"r3", b"r4"]
    assert [r.payload for r in s.after(ids[3], 10)] == [b"r4"]


def test_bounds_evict_oldest_first_and_count(tmp_path):
    s = Spool(tmp_path / "s.sqlite3", max_rows=3, max_age_s=100)
    for i in range(5):
        s.put("t", f"r{i}".encode(), now=1000.0 + i)
    assert [r.payload for r in s.after(0, 10)] == [b"r2", b"r3", b"r4"]
    assert s.evicted == 2
    s.put("t", b"late", now=1103.5)  # r0..r3 older than 100 s
    assert [r.payload for r in s.after(0, 10)] == [b"r4", b"late"]
    assert s.evicted == 4
    s.close()
    assert Spool(tmp_path / "s.sqlite3").evicted == 4  # the count is durable too


def test_boot_counter_increments_across_opens(tmp_path):
    assert Spool(tmp_path / "s").next_boot() == 1
    assert Spool(tmp_path / "s").next_boot() == 2


# -- stored confirmations -----------------------------------------------------------------

import json  # noqa: E402
import sqlite3  # noqa: E402

import pytest  # noqa: E402

from firmware_bridge.spool import reading_key, resend_delay  # noqa: E402

T = 1_800_000_000.0


def reading(seq: int, channel: str = "a", boot: int = 1) -> bytes:
    return json.dumps({"v": 1, "station": "lab-1", "channel": channel, "boot": boot, "seq": seq}).encode()


def payloads(rows) -> list[bytes]:
    return [r.payload for r in rows]


def test_reading_key_is_read_from_the_payload():
    assert reading_key(reading(7, "b", 3)) == ("b", 3, 7)
    assert reading_key(b"r1") is None
    assert reading_key(b"[1]") is None
    assert reading_key(json.dumps({"channel": "a", "boot": 1, "seq": True}).encode()) is None


def test_resend_delay_doubles_up_to_its_cap():
    assert [resend_delay(n, 300, 3600) for n in (1, 2, 3, 4, 5, 9)] == [300, 600, 1200, 2400, 3600, 3600]


def test_puback_deletes_until_the_server_has_confirmed_once(tmp_path):
    s = Spool(tmp_path / "s")
    ids = [s.put("t", reading(i), now=T) for i in range(3)]
    assert not s.confirming(T)
    s.published(ids[:1], now=T)
    assert payloads(s.after(0, 10)) == [reading(1), reading(2)]
    assert s.confirm({("a", 1): [(0, 0)]}, now=T + 1) == 0  # already gone: nothing to delete
    assert s.confirming(T + 2)
    s.published(ids[1:], now=T + 2)  # now a PUBACK only marks them sent
    assert len(s) == 2 and s.after(0, 10) == []
    assert s.unconfirmed(T + 12) == (2, 12.0)
    assert s.confirm({("a", 1): [(1, 2)]}, now=T + 3) == 2
    assert len(s) == 0 and s.unconfirmed(T + 4) == (0, 0.0)
    s.close()
    assert Spool(tmp_path / "s").confirming(T + 5)  # learnt once, remembered across restarts


def test_confirmation_deletes_only_the_readings_it_covers(tmp_path):
    s = Spool(tmp_path / "s")
    s.confirm({("b", 9): [(0, 0)]}, now=T)
    ids = [s.put("t", reading(i, ch, boot), now=T) for boot in (1, 2) for ch in "ab" for i in range(4)]
    other = s.put("t", b"not a reading", now=T)
    s.published([*ids, other], now=T)
    assert len(s) == len(ids)  # a row that is not a reading cannot be confirmed: PUBACK deletes it
    assert s.confirm({("a", 2): [(0, 1), (3, 3)], ("b", 1): [(2, 9)]}, now=T + 1) == 5
    left = {(json.loads(p)["channel"], json.loads(p)["boot"], json.loads(p)["seq"])
            for p in payloads(s.due(T + 10_000, 0, 100))}
    assert left == ({(ch, b, i) for b in (1, 2) for ch in "ab" for i in range(4)}
                    - {("a", 2, 0), ("a", 2, 1), ("a", 2, 3), ("b", 1, 2), ("b", 1, 3)})


def test_unconfirmed_readings_fall_due_oldest_first_with_back_off(tmp_path):
    s = Spool(tmp_path / "s", resend_after_s=10, resend_max_s=25)
    s.confirm({("b", 9): [(0, 0)]}, now=T)
    ids = [s.put("t", reading(i), now=T) for i in range(3)]
    s.published(ids, now=T + 1)
    assert s.next_due() == T + 11
    assert s.due(T + 10.9, 0, 10) == []
    assert payloads(s.due(T + 11, 0, 10)) == [reading(0), reading(1), reading(2)]  # oldest first
    assert payloads(s.due(T + 11, ids[0], 1)) == [reading(1)]
    s.resending(ids, now=T + 11)  # handed to MQTT again: not due before resend_after
    assert s.due(T + 20.9, 0, 10) == [] and s.next_due() == T + 21
    s.published(ids, now=T + 12)  # second PUBACK: twice the delay
    assert s.next_due() == T + 32
    s.published(ids, now=T + 40)  # third: 40, capped at 25
    assert s.next_due() == T + 65
    assert s.unconfirmed(T + 100) == (3, 100.0)


def test_first_confirmation_after_a_silence_brings_long_back_offs_forward(tmp_path):
    s = Spool(tmp_path / "s", resend_after_s=10, resend_max_s=1000)
    s.confirm({("b", 9): [(0, 0)]}, now=T)
    ids = [s.put("t", reading(i), now=T) for i in range(2)]
    for k in range(6):
        s.published(ids, now=T + k)  # back-off grown to 320 s
    assert s.next_due() == T + 5 + 320
    s.confirm({("a", 1): [(0, 0)]}, now=T + 100)  # the ingest is back after 100 s of silence
    assert s.next_due() == T + 110 and payloads(s.due(T + 110, 0, 10)) == [reading(1)]
    s.published(ids[1:], now=T + 111)
    s.confirm({("b", 9): [(1, 1)]}, now=T + 105)  # no silence: back-offs stay as they are
    assert s.next_due() == T + 111 + 640


def test_a_server_silent_for_longer_than_the_forget_time_means_puback_deletes_again(tmp_path):
    s = Spool(tmp_path / "s", confirm_forget_s=100)
    s.confirm({("b", 9): [(0, 0)]}, now=T)
    ids = [s.put("t", reading(i), now=T) for i in range(2)]
    s.published(ids[:1], now=T + 50)
    assert len(s) == 2
    s.published(ids[1:], now=T + 101)
    assert not s.confirming(T + 101) and len(s) == 1


def test_bounds_evict_unconfirmed_readings_too(tmp_path):
    s = Spool(tmp_path / "s", max_rows=3, max_age_s=1000)
    s.confirm({("b", 9): [(0, 0)]}, now=T)
    ids = [s.put("t", reading(i), now=T + i) for i in range(3)]
    s.published(ids, now=T + 3)
    s.put("t", reading(3), now=T + 4)
    assert s.evicted == 1 and len(s) == 3
    assert payloads(s.due(T + 10_000, 0, 10)) == [reading(1), reading(2)]


def test_a_spool_of_an_older_bridge_gets_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                            payload BLOB NOT NULL, created REAL NOT NULL);
        CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """)
    db.execute("INSERT INTO spool (topic, payload, created) VALUES ('t', ?, ?)", (reading(0), T))
    db.commit()
    db.close()
    s = Spool(path)
    [row] = s.after(0, 10)
    assert row.payload == reading(0)
    s.confirm({("b", 9): [(0, 0)]}, now=T)
    s.published([row.id], now=T)  # no key was recorded for it: deleted on PUBACK, as that bridge would
    assert len(s) == 0


@pytest.mark.parametrize("after, cap", [(10, 10), (10, 5)])
def test_cap_below_the_first_delay_is_raised_to_it(tmp_path, after, cap):
    s = Spool(tmp_path / "s", resend_after_s=after, resend_max_s=cap)
    assert s.resend_max_s == 10
