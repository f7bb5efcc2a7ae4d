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
