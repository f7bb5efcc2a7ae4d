"""End-to-end acknowledgement (issue 13, "How it will be checked" 1, 2, 4, 5): a reading
leaves the Pi only when InfluxDB holds it, so no broker failure loses one.

Real Mosquitto, real InfluxDB, the ingest and the bridges as separate processes, each
bridge reading a simulated PMS5003 on a pseudo-terminal, 2 s windows. Each reading has a
per-channel ``seq`` persisted across restarts, so "every seq of every station stored
exactly once" is checked against what InfluxDB holds: per station the seqs are 0..last
with no gap, one point each. (Scenario 6, the ACL, is in tests/deploy/test_mosquitto_acl.py.)
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from civicair.services import Mosquitto
from firmware_bridge.simulator import PtySimulator
from tests.conftest import wait_until
from tests.procs import bridge_args, server_env, spawn, stop

pytestmark = pytest.mark.slow

WINDOW = 2
VALUES = {"pm25_cf1": 12, "pm25_atm": 11, "pm10_atm": 19, "n0_3": 900, "n0_5": 300}
#: Bridge resend rule for the tests: seconds, not minutes (the default is 300 s / 3600 s).
RESEND = {"CIVICAIR_SPOOL_RESEND_AFTER": "4", "CIVICAIR_SPOOL_RESEND_MAX": "8"}
#: The broker's snapshot period for these tests (shipped: 30 s): the ingest stays away longer.
AUTOSAVE_S = 6


class Fleet:
    """Bridges on pseudo-terminals, one ingest, one broker; everything restartable."""

    def __init__(self, tmp: Path, broker: Mosquitto, influxdb, stations: list[str]) -> None:
        self.tmp = tmp
        self.broker = broker
        self.log = tmp / "processes.log"
        self.env = {**server_env(broker, influxdb, tmp), **RESEND}
        self.stations = stations
        self.sims = {s: PtySimulator("pms5003", rate_hz=5, values=VALUES, link=tmp / f"tty-{s}")
                     for s in stations}
        for sim in self.sims.values():
            sim.start()
        self.bridges: dict[str, subprocess.Popen] = {}
        self.ingests: dict[str, subprocess.Popen] = {}

    def spool(self, station: str) -> Path:
        return self.tmp / f"spool-{station}.sqlite3"

    def start_bridge(self, station: str, **env: str) -> None:
        args = bridge_args(station, self.tmp / f"tty-{station}", self.spool(station), WINDOW)
        self.bridges[station] = spawn(args, {**self.env, **env}, self.log)

    def start_ingest(self, name: str = "civicair-ingest", **env: str) -> None:
        self.ingests[name] = spawn(["ingest"], {**self.env, "CIVICAIR_MQTT_CLIENT_ID": name, **env}, self.log)

    def stop_ingest(self) -> None:
        for name in list(self.ingests):
            stop(self.ingests.pop(name))

    def produced(self, station: str) -> int:
        """The last seq the station's bridge has spooled (-1: none yet)."""
        with sqlite3.connect(f"file:{self.spool(station)}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM state WHERE key = 'seq_a'").fetchone()
        return -1 if row is None else int(row[0]) - 1

    def spool_rows(self, station: str) -> int:
        with sqlite3.connect(f"file:{self.spool(station)}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        for p in self.bridges.values():
            stop(p)
        self.stop_ingest()
        for sim in self.sims.values():
            sim.close()
        print(self.log.read_text()[-6000:])


def stored(influx) -> dict[str, list[tuple[int, int]]]:
    """{station: [(ts, seq), …]} as InfluxDB holds them, one entry per point."""
    (res,) = influx.query('SELECT "seq" FROM "pm" GROUP BY "station"')
    return {s["tags"]["station"]: [(int(t), int(q)) for t, q in s["values"]] for s in res.get("series", [])}


def wait_complete(fleet: Fleet, influx, timeout: float = 60) -> dict[str, int]:
    """Wait until every reading each bridge has spooled by now is in InfluxDB; the targets."""
    targets = {s: fleet.produced(s) for s in fleet.stations}

    def done() -> bool:
        held = stored(influx)
        return all({q for _, q in held.get(s, [])} >= set(range(t + 1)) for s, t in targets.items())

    wait_until(done, timeout=timeout, message=f"every seq up to {targets} stored; log:\n"
                                              f"{fleet.log.read_text()[-3000:]}")
    return targets


def assert_exactly_once(influx, stations: list[str]) -> None:
    held = stored(influx)
    for s in stations:
        points = held[s]
        seqs = sorted(q for _, q in points)
        assert seqs == list(range(len(seqs))), (s, seqs)  # no gap, no repeat
        ts = [t for t, _ in sorted(points, key=lambda p: p[1])]
        assert ts == sorted(ts) and len(set(ts)) == len(ts), s


def snapshots(broker: Mosquitto) -> int:
    """How often the broker has saved its in-memory state (its log says each time)."""
    return broker.log_path.read_text(errors="replace").count("Saving in-memory database")


def wait_stored(influx, stations: list[str], at_least: int) -> None:
    wait_until(lambda: all(len(stored(influx).get(s, [])) >= at_least for s in stations), timeout=60,
               message=f"{at_least} readings of each station stored")


@pytest.fixture
def make_fleet(tmp_path, influxdb):
    made: list[tuple[Fleet, Mosquitto]] = []

    def make(stations: list[str], persistence: bool = True, bridge_env: dict[str, str] | None = None,
             **ingest_env: str) -> Fleet:
        broker = Mosquitto(tmp_path / "mosquitto", persistence=persistence,
                           extra_config=f"autosave_interval {AUTOSAVE_S}\n")
        broker.start()
        fleet = Fleet(tmp_path, broker, influxdb, stations)
        made.append((fleet, broker))
        fleet.start_ingest(**ingest_env)
        for s in stations:
            fleet.start_bridge(s, **(bridge_env or {}))
        return fleet

    yield make
    for fleet, broker in made:
        fleet.close()
        broker.stop()


@pytest.mark.parametrize("persistence", [True, False], ids=["broker-persistence-on", "broker-persistence-off"])
def test_broker_killed_while_the_ingest_is_away_loses_no_reading(make_fleet, influx, persistence):
    """Scenarios 1 and 2: the broker holds the only copy of what it queued for an absent
    ingest only until the bridges hear it was stored; killed, it loses its queue (since its
    last snapshot, or all of it), and the bridges resend."""
    stations = ["conf-1", "conf-2", "conf-3"]
    fleet = make_fleet(stations, persistence=persistence)
    wait_stored(influx, stations, 2)
    fleet.stop_ingest()
    time.sleep(AUTOSAVE_S + 1)  # readings queue in the broker for the ingest, past a snapshot
    if persistence:
        # Kill it after readings it acknowledged since its last snapshot: exactly what a
        # crash loses (a bridge deleting on PUBACK loses them; tested by hand: it does).
        saved = snapshots(fleet.broker)
        wait_until(lambda: snapshots(fleet.broker) > saved, timeout=AUTOSAVE_S + 5, message="a snapshot")
        after = {s: fleet.produced(s) for s in stations}
        wait_until(lambda: all(fleet.produced(s) >= after[s] + 2 for s in stations), timeout=AUTOSAVE_S,
                   message="readings after the snapshot")
    fleet.broker.kill()  # as the OOM killer would
    fleet.broker.start()
    fleet.start_ingest()
    wait_complete(fleet, influx)
    assert_exactly_once(influx, stations)
    log = fleet.log.read_text()
    assert "the server confirms stored readings" in log
    if not persistence:  # the whole queue was lost: only the resends can have filled it in
        assert "resent" in log


def test_bridge_killed_between_puback_and_confirmation_resends_on_restart(make_fleet, influx):
    """Scenario 4: readings the broker acknowledged but the ingest never stored (it was away,
    and the broker lost its queue) leave with a SIGKILLed bridge's spool, and go out again."""
    fleet = make_fleet(["kill-1"], persistence=False)
    wait_stored(influx, ["kill-1"], 2)
    fleet.stop_ingest()
    before = fleet.produced("kill-1")
    wait_until(lambda: fleet.produced("kill-1") >= before + 3, timeout=30, message="readings sent meanwhile")
    fleet.bridges["kill-1"].send_signal(signal.SIGKILL)  # PUBACKed, not confirmed
    fleet.bridges["kill-1"].wait()
    assert fleet.spool_rows("kill-1") >= 3
    fleet.broker.kill()  # and the broker's copy is gone too
    fleet.broker.start()
    fleet.start_ingest()
    fleet.start_bridge("kill-1")
    wait_complete(fleet, influx)
    assert_exactly_once(influx, ["kill-1"])
    assert "resent" in fleet.log.read_text()


def test_old_style_bridge_against_the_confirming_ingest_delivers_everything(make_fleet, influx):
    """Scenario 5a: a bridge that does not take confirmations deletes on PUBACK, as before."""
    fleet = make_fleet(["old-1"], bridge_env={"CIVICAIR_SPOOL_CONFIRMATIONS": "false"})
    wait_stored(influx, ["old-1"], 4)
    wait_complete(fleet, influx)
    assert_exactly_once(influx, ["old-1"])
    stop(fleet.bridges.pop("old-1"))
    assert fleet.spool_rows("old-1") <= 1  # acknowledged by the broker: gone (one may be in flight)
    assert "the server confirms stored readings" not in fleet.log.read_text()


def test_new_bridge_against_an_ingest_that_never_confirms_delivers_everything(make_fleet, influx):
    """Scenario 5b: until a confirmation arrives, a PUBACK deletes, so the spool stays small."""
    fleet = make_fleet(["new-1"], CIVICAIR_CONFIRM_STORED="false")
    wait_stored(influx, ["new-1"], 4)
    wait_complete(fleet, influx)
    assert_exactly_once(influx, ["new-1"])
    stop(fleet.bridges.pop("new-1"))
    assert fleet.spool_rows("new-1") <= 1
    log = fleet.log.read_text()
    assert "the server confirms stored readings" not in log and "resent" not in log


def test_two_ingests_on_a_shared_subscription_lose_nothing_through_a_broker_restart(make_fleet, influx):
    """Scenario 3: Mosquitto 2.0 does not restore a $share subscription after a restart, so
    what the bridges publish before the ingests subscribe again reaches nobody (docs/ingest.md);
    unconfirmed, it is resent. Both processes take a share; nothing is stored twice."""
    stations = ["share-1", "share-2"]
    shared = {"CIVICAIR_SHARE_GROUP": "ingest"}
    fleet = make_fleet([])
    fleet.stop_ingest()
    fleet.stations = stations
    for name in ("ingest-a", "ingest-b"):
        fleet.start_ingest(name, **shared)
    for s in stations:
        fleet.sims[s] = PtySimulator("pms5003", rate_hz=5, values=VALUES, link=fleet.tmp / f"tty-{s}")
        fleet.sims[s].start()
        fleet.start_bridge(s)
    wait_stored(influx, stations, 2)
    fleet.stop_ingest()  # both away ...
    fleet.broker.stop()  # ... while the broker restarts
    fleet.broker.start()
    before = {s: fleet.produced(s) for s in stations}
    wait_until(lambda: all(fleet.produced(s) >= before[s] + 2 for s in stations), timeout=20,
               message="readings published while no ingest is subscribed")
    for name in ("ingest-a", "ingest-b"):
        fleet.start_ingest(name, **shared)
    wait_complete(fleet, influx)
    assert_exactly_once(influx, stations)
    log = fleet.log.read_text()
    assert "resent" in log
