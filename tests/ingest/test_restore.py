"""Quality history across an ingest restart: flat-line, spike and A/B go on judging.

Before ingest/restore.py (first called ingest/history.py), a restarted ingest judged the
first windows of every series with no past: a sensor stuck on one value was reported
clean for another ten windows.
"""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest

from civicair.influx import Influx, series
from civicair.schema import contract
from civicair.schema.qc import Flag
from ingest import restore
from ingest.clean import Cleaner
from ingest.columns import to_columns
from ingest.lineprotocol import encode, encode_amendments
from tests.conftest import wait_until

HISTORY_BITS = Flag.FLAT_LINE | Flag.SPIKE | Flag.AB_DISAGREEMENT


def windows(station: str, start: int, values: list[float], channel: str = "a", seq0: int = 0) -> list[dict]:
    return [{"v": 1, "station": station, "sensor": "pms5003t", "channel": channel, "ts": start + 60 * i,
             "window": 60, "n": 60, "seq": seq0 + i, "boot": 1, "synced": True,
             "pm25_cf1": v, "pm25_atm": v, "rh": 50.0, "temp": 20.0}
            for i, v in enumerate(values)]


def series_values() -> dict[str, tuple[list[float], list[float], str]]:
    """Per station: windows before the restart, windows after it, and the channel.

    ``flat``: 6 equal windows before and 6 after: FLAT_LINE (10 in a row) can only be seen
    across the restart. ``spiky``: a steady series, then a spike right after the restart.
    ``pair``: channels a and b of one station, disagreeing both sides of the restart."""
    rng = np.random.default_rng(7)
    steady = list(np.round(10 + rng.normal(0, 0.5, 12), 1))
    return {
        "flat": ([13.0] * 6, [13.0] * 6, "a"),
        "spiky": (steady, [10.2, 60.0, 10.1], "a"),
        "pair-a": ([10.0, 11.0, 12.0], [10.0, 11.0], "a"),
        "pair-b": ([30.0, 31.0, 32.0], [30.0, 31.0], "b"),
    }


def readings(start: int, part: int) -> list[dict]:
    out = []
    for name, (before, after, channel) in series_values().items():
        station = name.split("-")[0]
        values = before if part == 0 else after
        first = start if part == 0 else start + 60 * len(before)
        out += windows(station, first, values, channel, seq0=0 if part == 0 else len(before))
    return out


def qc_by_key(batch) -> dict[tuple[str, str, int], int]:
    return {(s, c, int(t)): int(q) for s, c, t, q in
            zip(batch.station.tolist(), batch.channel.tolist(), batch.ints["ts"].tolist(),
                batch.derived["qc"].tolist(), strict=True)}


def run_without_restart(start: int, now: int):
    cleaner = Cleaner()
    first = cleaner.clean(to_columns(readings(start, 0)), now=now)
    second = cleaner.clean(to_columns(readings(start, 1)), now=now)
    return first, second


def test_the_scenario_needs_the_past_to_be_judged():
    """Without history, the windows after the restart get none of the three flags."""
    start = 1_800_000_000
    _, second = run_without_restart(start, now=start + 3600)
    fresh = Cleaner().clean(to_columns(readings(start, 1)), now=start + 3600)
    expected, forgetful = qc_by_key(second), qc_by_key(fresh)
    assert expected[("flat", "a", start + 60 * 9)] & Flag.FLAT_LINE
    assert expected[("spiky", "a", start + 60 * 13)] & Flag.SPIKE
    assert expected[("pair", "a", start + 60 * 3)] & Flag.AB_DISAGREEMENT
    assert not any(q & (Flag.FLAT_LINE | Flag.SPIKE) for q in forgetful.values())


def test_a_restored_history_judges_as_if_the_process_never_stopped():
    start = 1_800_000_000
    first, second = run_without_restart(start, now=start + 3600)
    restored = Cleaner()
    kept = restored.restore(first.station, first.sensor, first.channel, first.ints["ts"],
                            first.values["pm25_cf1"], first.values["pm25_atm"], first.derived["qc"])
    assert kept == sum(min(len(b), restored.settings.history_depth) for b, _, _ in series_values().values())
    after = restored.clean(to_columns(readings(start, 1)), now=start + 3600)
    assert qc_by_key(after) == qc_by_key(second)


def test_a_redelivered_window_keeps_the_verdict_it_was_stored_with():
    start = 1_800_000_000
    cleaner = Cleaner()
    batch = cleaner.clean(to_columns(windows("flat", start, [13.0] * 12)), now=start + 3600)
    assert batch.derived["qc"][-1] & Flag.FLAT_LINE
    restored = Cleaner()
    restored.restore(batch.station, batch.sensor, batch.channel, batch.ints["ts"],
                     batch.values["pm25_cf1"], batch.values["pm25_atm"], batch.derived["qc"])
    again = restored.clean(to_columns(windows("flat", start + 60 * 11, [13.0], seq0=11)), now=start + 3600)
    assert int(again.derived["qc"][0]) == int(batch.derived["qc"][-1])


def test_restore_fills_an_empty_history_only():
    cleaner = Cleaner()
    cleaner.clean(to_columns(windows("x", 1_800_000_000, [1.0])), now=1_800_000_000)
    with pytest.raises(ValueError, match="empty history"):
        cleaner.restore(np.array(["x"]), np.array(["pms5003"]), np.array(["a"]), np.array([1]),
                        np.array([1.0]), np.array([1.0]), np.array([0]))


def test_the_query_is_built_from_constants_and_integers():
    q = restore.query(9, 86400)
    assert q == ('SELECT "pm25_cf1", "pm25_atm", "qc" FROM "pm" WHERE time > now() - 86400s '
                 'GROUP BY "station", "sensor", "channel" ORDER BY time DESC LIMIT 9')
    with pytest.raises(ValueError):
        restore.query(0, 86400)
    with pytest.raises(ValueError):
        restore.query(9, 0)


def test_restore_from_the_real_database_reproduces_the_flags(influx: Influx):
    """The windows written by one process, read back by the next through InfluxQL."""
    now = int(time.time())
    start = now - 3600
    first, second = run_without_restart(start, now=now)
    influx.write(encode(first))
    restored = Cleaner()
    got = restore.restore(influx, restored, lookback_s=86400)
    assert got.series == 4 and got.windows == sum(
        min(len(b), restored.settings.history_depth) for b, _, _ in series_values().values())
    after = restored.clean(to_columns(readings(start, 1)), now=now)
    assert qc_by_key(after) == qc_by_key(second)


def test_windows_older_than_the_lookback_are_not_restored(influx: Influx):
    now = int(time.time())
    old = Cleaner().clean(to_columns(windows("old", now - 3 * 86400, [5.0] * 3)), now=now)
    influx.write(encode(old))
    assert restore.restore(influx, Cleaner(), lookback_s=86400) == restore.Restored(0, 0)


def test_restore_against_a_database_that_is_down_raises_unavailable(tmp_path):
    from civicair.influx import InfluxSettings, InfluxUnavailable
    from civicair.services import free_port

    down = Influx(InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database="civicair"))
    with pytest.raises(InfluxUnavailable):
        restore.restore(down, Cleaner(), lookback_s=86400)


def stored_qc(influx: Influx, station: str) -> dict[int, int]:
    (result,) = influx.query(f"SELECT \"qc\" FROM \"pm\" WHERE \"station\" = '{station}'")
    return {int(t): int(q) for s in series(result) for t, q in s["values"]}


@pytest.mark.slow  # an end-to-end scenario of seconds to a minute: not in the inner loop
def test_a_restarted_ingest_flags_a_flat_line_that_began_before_the_restart(influx, spawn_ingest, publisher):
    """As an operator sees it: the ingest is restarted (an upgrade) while a sensor is stuck;
    the tenth equal window, the first after the restart, is flagged FLAT_LINE."""
    start = int(time.time()) // 60 * 60 - 3600
    stuck = windows("stuck", start, [13.0] * 10)
    topic = contract.readings_topic("stuck")

    first = spawn_ingest("ingest-1")
    for r in stuck[:9]:
        publisher.publish(topic, orjson.dumps(r))
    wait_until(lambda: len(stored_qc(influx, "stuck")) == 9, timeout=30, message="nine windows stored")
    assert first.stop() == 0

    second = spawn_ingest("ingest-2")
    assert "quality history restored: 9 windows of 1 series" in second.log_text()
    publisher.publish(topic, orjson.dumps(stuck[9]))
    wait_until(lambda: len(stored_qc(influx, "stuck")) == 10, timeout=30, message="tenth window stored")
    qc = stored_qc(influx, "stuck")
    assert not any(qc[start + 60 * i] & HISTORY_BITS for i in range(9))
    assert qc[start + 60 * 9] & Flag.FLAT_LINE


def test_an_ingest_started_while_influxdb_is_down_says_so_and_runs(spawn_ingest, influxdb):
    influxdb.stop()
    ingest = spawn_ingest("ingest-down")
    assert "quality history starts empty: could not read it back from InfluxDB" in ingest.log_text()
    assert ingest.alive()


# -- an A/B pair split across batches: the earlier, written half is amended -------------------


def pair(start: int, a: float, b: float) -> tuple[list[dict], list[dict]]:
    return windows("duo", start, [a]), windows("duo", start, [b], channel="b")


def test_the_first_half_of_a_split_pair_is_amended_keeping_its_other_bits():
    now = 1_800_000_000
    first, second = pair(now - 600, 4.0, 30.0)
    first[0]["rh"] = 92.0  # HIGH_HUMIDITY: a bit the amendment must keep
    cleaner = Cleaner()
    a = cleaner.clean(to_columns(first), now=now)
    assert a.amended is None and not a.derived["qc"][0] & Flag.AB_DISAGREEMENT
    b = cleaner.clean(to_columns(second), now=now)
    assert b.derived["qc"][0] & Flag.AB_DISAGREEMENT
    amended = b.amended
    assert amended is not None and len(amended) == 1
    assert (amended.station.tolist(), amended.sensor.tolist(), amended.channel.tolist(),
            amended.ts.tolist()) == (["duo"], ["pms5003t"], ["a"], [now - 600])
    assert amended.qc.tolist() == [int(a.derived["qc"][0]) | Flag.AB_DISAGREEMENT]
    assert amended.qc[0] & Flag.HIGH_HUMIDITY
    # As if both had come in one batch:
    together = Cleaner().clean(to_columns(first + second), now=now)
    assert sorted(together.derived["qc"].tolist()) == sorted([int(amended.qc[0]), int(b.derived["qc"][0])])


def test_an_agreeing_split_pair_amends_nothing():
    first, second = pair(1_800_000_000 - 600, 10.0, 11.0)
    cleaner = Cleaner()
    cleaner.clean(to_columns(first), now=1_800_000_000)
    assert cleaner.clean(to_columns(second), now=1_800_000_000).amended is None


def test_an_amendment_changes_only_qc_of_the_stored_point(influx: Influx):
    now = int(time.time())
    first, second = pair(now - 600, 4.0, 30.0)
    cleaner = Cleaner()
    a = cleaner.clean(to_columns(first), now=now)
    influx.write(encode(a))
    b = cleaner.clean(to_columns(second), now=now)
    influx.write(encode(b) + encode_amendments(b.amended))
    (result,) = influx.query('SELECT * FROM "pm" GROUP BY "channel"')
    rows = {s["tags"]["channel"]: dict(zip(s["columns"], s["values"][0], strict=True)) for s in series(result)}
    assert rows["a"]["qc"] & Flag.AB_DISAGREEMENT and rows["b"]["qc"] & Flag.AB_DISAGREEMENT
    assert rows["a"]["pm25_cf1"] == 4.0 and rows["a"]["seq"] == 0 and rows["a"]["pm25"] == a.derived["pm25"][0]
    assert len(rows) == 2  # no new point: the amendment merged into a's


def test_amendment_lines_escape_tags_as_the_readings_do():
    from ingest.columns import Amendments

    lines = encode_amendments(Amendments(np.array(["a,b c"]), np.array(["pms5003"]), np.array(["a"]),
                                         np.array([1_800_000_000]), np.array([64])))
    assert lines == b"pm,station=a\\,b\\ c,sensor=pms5003,channel=a qc=64i 1800000000\n"


def test_a_running_ingest_flags_both_halves_of_a_pair_that_arrived_in_two_batches(influx, spawn_ingest,
                                                                                  publisher):
    spawn_ingest("ingest-ab")
    start = int(time.time()) // 60 * 60 - 600
    first, second = pair(start, 4.0, 30.0)
    publisher.publish(contract.readings_topic("duo"), orjson.dumps(first[0]))
    wait_until(lambda: len(stored_qc(influx, "duo")) == 1, timeout=30, message="channel a stored")
    assert not stored_qc(influx, "duo")[start] & Flag.AB_DISAGREEMENT
    publisher.publish(contract.readings_topic("duo"), orjson.dumps(second[0]))

    def both_flagged():
        (result,) = influx.query("SELECT \"qc\" FROM \"pm\" WHERE \"station\" = 'duo' GROUP BY \"channel\"")
        qc = {s["tags"]["channel"]: s["values"][0][1] for s in series(result)}
        return len(qc) == 2 and all(q & Flag.AB_DISAGREEMENT for q in qc.values())

    wait_until(both_flagged, timeout=30, message="both channels flagged AB_DISAGREEMENT")


def test_after_a_restart_the_restored_half_of_a_pair_is_amended_too(influx: Influx):
    now = int(time.time())
    first, second = pair(now - 600, 4.0, 30.0)
    a = Cleaner().clean(to_columns(first), now=now)
    influx.write(encode(a))
    restarted = Cleaner()
    restore.restore(influx, restarted, lookback_s=86400)
    b = restarted.clean(to_columns(second), now=now)
    assert b.amended is not None
    assert b.amended.qc.tolist() == [int(a.derived["qc"][0]) | Flag.AB_DISAGREEMENT]
