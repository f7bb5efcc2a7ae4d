"""Simulated sensors on a real pty: every contract sensor has a behaviour, faults are injected
on request, bytes go both ways through the pty, and the command line runs them. (Each family's
behaviour is tested beside its parser: tests/firmware_bridge/sensors/test_<family>_sim.py.)"""

from __future__ import annotations

import os
import random
import time

import pytest
import serial

from civicair import cli
from firmware_bridge.sensors import FAMILIES, family, sds011, sps30
from firmware_bridge.sensors.base import CommandReply, Measurement
from firmware_bridge.simulator import BEHAVIOURS, Faults, PtySimulator, behaviour_for
from tests.firmware_bridge.sensors.frames_sds011 import GOLDEN as SDS_FRAME
from tests.firmware_bridge.sensors.frames_sds011 import GOLDEN_VALUES as SDS_VALUES
from tests.firmware_bridge.sensors.frames_sps30 import GOLDEN_VALUES as SPS_VALUES

H = bytes.fromhex
C = sps30.COMMANDS


# -- registry and fault injection ------------------------------------------------------------------
@pytest.mark.parametrize("sensor", sorted(FAMILIES))
def test_every_contract_sensor_has_a_behaviour(sensor):
    behaviour = behaviour_for(sensor)
    assert behaviour.model == sensor
    with pytest.raises(ValueError):
        behaviour_for("sds021")


@pytest.mark.parametrize("sensor", sorted(FAMILIES))
def test_each_behaviour_sits_beside_its_family_and_is_exported_here(sensor):
    import firmware_bridge.simulator as simulator

    cls = BEHAVIOURS[sensor]
    assert cls.__module__ == family(sensor).__name__ + "_sim"
    assert getattr(simulator, cls.__name__) is cls


def test_drop_loses_exactly_one_byte_of_each_frame():
    faults = Faults(drop=1.0, rng=random.Random(1))
    for _ in range(20):
        out = faults.apply(SDS_FRAME, 0.0)
        assert len(out) == len(SDS_FRAME) - 1
        assert any(SDS_FRAME[:i] + SDS_FRAME[i + 1 :] == out for i in range(len(SDS_FRAME)))
    assert faults.dropped == 20


def test_garbage_comes_before_an_intact_frame():
    faults = Faults(garbage=1.0, rng=random.Random(2))
    parser = sds011.Parser()
    out = b"".join(faults.apply(SDS_FRAME, 0.0) for _ in range(30))
    assert len(out) > 30 * len(SDS_FRAME)
    assert parser.feed(out).count(Measurement("sds011", SDS_VALUES)) == 30


def test_stall_pauses_for_its_length_and_does_not_restart_itself():
    faults = Faults(stall=1.0, stall_seconds=2.0, rng=random.Random(3))
    faults.apply(SDS_FRAME, 10.0)
    assert faults.stalled(10.0) and faults.stalled(11.9) and not faults.stalled(12.0)
    faults.apply(SDS_FRAME, 11.0)  # during the stall: no new one
    assert faults.stalls == 1 and not faults.stalled(12.0)


def test_fault_probabilities_are_checked():
    with pytest.raises(ValueError):
        Faults(drop=1.5)


def test_simulator_holds_output_during_a_stall_then_sends_it():
    sim = PtySimulator("sds011", values=SDS_VALUES, stall=1.0, stall_seconds=5.0, seed=4)
    try:
        os.set_blocking(sim.slave, False)
        sim.emit(SDS_FRAME, 100.0)
        sim.emit(SDS_FRAME, 101.0)
        assert sim.flush(104.9)
        with pytest.raises(BlockingIOError):
            os.read(sim.slave, 100)
        assert sim.flush(105.0)
        assert os.read(sim.slave, 100) == SDS_FRAME * 2
    finally:
        sim.close()


# -- through a real pseudo-terminal --------------------------------------------------------------------
def read_events(port, parser, until, timeout=5.0, poll=None):
    """Read and parse until ``until(events)`` holds; a liveness bound, not a timing assertion."""
    events = []
    deadline = time.monotonic() + timeout
    while not until(events):
        assert time.monotonic() < deadline, f"no luck within {timeout} s: {events}"
        if poll:
            port.write(poll)
        events += parser.feed(port.read(256))
    return events


@pytest.fixture
def pty_sensor(request):
    sensor, kw = request.param
    sim = PtySimulator(sensor, **kw)
    thread = sim.start()
    port = serial.Serial(sim.path, FAMILIES[sensor].BAUD_RATE, timeout=0.05)
    yield sim, port
    port.close()
    sim.close()
    thread.join(2)


def measurements(events):
    return [e for e in events if isinstance(e, Measurement)]


@pytest.mark.parametrize("pty_sensor", [("sds011", {"rate_hz": 50, "values": SDS_VALUES})],
                         indirect=True, ids=["sds011"])
def test_sds011_round_trip_through_a_pty(pty_sensor):
    sim, port = pty_sensor
    parser = sds011.Parser()
    events = read_events(port, parser, lambda ev: len(measurements(ev)) >= 3)
    assert all(m.values == SDS_VALUES for m in measurements(events))
    port.write(sds011.COMMANDS["passive_mode"])
    read_events(port, parser, lambda ev: CommandReply(
        "sds011", sds011.REPORT_MODE, H("010100a160")) in ev)
    port.write(sds011.COMMANDS["passive_read"])
    read_events(port, parser, lambda ev: Measurement("sds011", SDS_VALUES) in ev)
    assert not parser.stats.errors


@pytest.mark.parametrize("pty_sensor", [("sps30", {"rate_hz": 20, "values": SPS_VALUES})],
                         indirect=True, ids=["sps30"])
def test_sps30_round_trip_through_a_pty(pty_sensor):
    sim, port = pty_sensor
    parser = sps30.Parser()
    for name in sps30.INIT_SEQUENCE:
        port.write(C[name])
    events = read_events(port, parser, lambda ev: len(measurements(ev)) >= 3,
                         poll=C[sps30.POLL[0]])
    assert CommandReply("sps30", sps30.START, b"", 0) in events
    assert all(m.values == SPS_VALUES for m in measurements(events))
    assert sim.frames_sent >= 3
    assert not parser.stats.errors


@pytest.mark.parametrize("pty_sensor", [("sds011", {"rate_hz": 100, "values": SDS_VALUES,
                                                    "garbage": 0.5, "seed": 9})],
                         indirect=True, ids=["sds011 with garbage"])
def test_garbage_on_the_line_costs_no_reading(pty_sensor):
    sim, port = pty_sensor
    parser = sds011.Parser()
    events = read_events(port, parser, lambda ev: len(measurements(ev)) >= 20)
    assert all(m.values == SDS_VALUES for m in measurements(events))
    assert parser.stats.skipped_bytes > 0


# -- command line --------------------------------------------------------------------------------------
def test_simulate_accepts_every_contract_sensor_and_the_fault_flags():
    (sub,) = [a for a in cli.parser()._actions if a.dest == "command"]
    choices = {a.dest: a.choices for a in sub.choices["simulate"]._actions}
    assert sorted(choices["sensor"]) == sorted(FAMILIES)
    args = cli.parser().parse_args(["simulate", "--sensor", "sps30", "--drop", "0.1",
                                    "--stall", "0.05", "--stall-seconds", "2"])
    assert (args.sensor, args.drop, args.stall, args.stall_seconds) == ("sps30", 0.1, 0.05, 2.0)
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["simulate", "--sensor", "sds021"])


def test_simulate_runs_for_its_duration(capsys):
    assert cli.main(["simulate", "--sensor", "sds011", "--duration", "0.2", "--drop", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "simulated sds011 on /dev/pts/" in out
