"""The sensor state machine, without threads or ports: a hand-driven clock, hand-made
events, and the simulated sensors' behaviours (bytes in, bytes out) as the other end."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicair.schema import contract
from firmware_bridge.sensorloop import (
    LASER_SAVE_S,
    Now,
    PortLost,
    PortOpened,
    SensorMachine,
    Stopping,
)
from firmware_bridge.sensors import MODULES, family, plantower, sds011, sps30
from firmware_bridge.sensors.base import CommandReply, Measurement
from firmware_bridge.simulator import behaviour_for

T0 = 1_800_000_000  # a multiple of 60 and of 300: 2027-01-15T08:00:00Z
MONO0 = 5_000.0
AIR = {"pm25_atm": 9.0, "pm10_atm": 12.0, "n0_3": 300.0, "n0_5": 90.0}


def at(t: float, *, mono: float | None = None, synced: bool = True) -> Now:
    """``t`` seconds after T0, on both clocks unless ``mono`` says otherwise."""
    return Now(T0 + t, MONO0 + t if mono is None else mono, synced)


def machine(model: str = "pms5003", **kw) -> SensorMachine:
    kw.setdefault("window_s", 60)
    return SensorMachine(family(model), station="lab-1", model=model, **kw)


def frame(model: str = "pms5003", **values: float) -> Measurement:
    return Measurement(model, {**AIR, **values})


# -- opening the port -------------------------------------------------------------------------------
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_open_sends_the_init_sequence_and_wakes_the_sensor(module):
    m = machine(module.MODELS[0])
    assert not m.awake
    for opened_at in (0.0, 100.0):  # a reopen sets the sensor up again (it may have lost power)
        step = m.step(at(opened_at), [PortOpened()])
        # The set-up and nothing else: the first poll waits for the sensor's first answer.
        assert step.commands == [module.COMMANDS[name] for name in module.INIT_SEQUENCE]
        assert m.awake and m.port_open and step.readings == []
        polls = m.step(at(opened_at + 0.1)).commands
        assert polls == ([module.COMMANDS[module.POLL[0]]] if module.POLL else [])


def test_sps30_is_polled_once_per_poll_period_while_awake_only():
    m = machine("sps30", duty_period_s=300, warmup_s=30)
    read = sps30.COMMANDS["read_values"]
    m.step(at(0.0), [PortOpened()])
    polled = [t / 10 for t in range(1, 310) if read in m.step(at(t / 10)).commands]
    assert polled == pytest.approx([0.1 + 0.5 * k for k in range(60)])  # every 0.5 s to warm-up's end
    # Asleep after warm-up (the next published window is T0 + 300): no polls until the wake.
    assert not m.awake
    assert not any(read in m.step(at(t)).commands for t in range(31, 210))
    assert read in m.step(at(210.0)).commands and m.awake


# -- warm-up and the zero guard -----------------------------------------------------------------------
def test_frames_during_warm_up_are_discarded_then_averaged():
    m = machine(warmup_s=30)
    m.step(at(0.0), [PortOpened()])
    readings = []
    for t in range(0, 121):
        readings += m.step(at(t + 0.5), [frame(pm25_atm=1000.0 if t < 30 else 9.0)]).readings
    # Warm-up ends at T0+30: the window ending T0+60 is joined late, so it is not published
    # from a live start; its frames count (30..59) and the warm-up frames do not.
    assert m.sampler.discarded_warmup == 30
    assert [r["ts"] for r in readings] == [T0 + 60, T0 + 120]
    assert all(r["pm25_atm"] == 9.0 for r in readings)
    assert [r["n"] for r in readings] == [30, 60]
    for r in readings:
        contract.validate_reading(r, "lab-1")


def test_all_zero_counts_right_after_wake_are_dropped_until_the_fan_is_up():
    m = machine(window_s=10)
    m.step(at(0.0), [PortOpened()])
    zero = frame(pm25_atm=0.0, n0_3=0.0, n0_5=0.0)
    for t in range(1, 4):
        m.step(at(t), [zero])
    assert (m.discarded_zero, m.frames) == (3, 0)
    m.step(at(4.0), [frame()])
    m.step(at(5.0), [zero])  # once a count was seen, a zero frame is clean air, not a stalled fan
    assert (m.discarded_zero, m.frames) == (3, 2)
    m.step(at(6.0), [PortLost()])
    m.step(at(7.0), [PortOpened()])  # after a (re)open the guard is up again
    m.step(at(8.0), [zero])
    assert m.discarded_zero == 4


def test_a_sensor_without_particle_counts_is_never_zero_guarded():
    m = machine("sds011", window_s=10)
    m.step(at(0.0), [PortOpened()])
    m.step(at(1.0), [Measurement("sds011", {"pm25_atm": 0.0, "pm10_atm": 0.0})])
    assert (m.discarded_zero, m.frames) == (0, 1)


def test_frames_before_the_port_opens_or_while_asleep_are_not_measured():
    m = machine(window_s=10)
    m.step(at(0.0), [frame()])
    assert m.frames == 0
    m.step(at(1.0), [PortOpened()])
    m.step(at(2.0), [frame()])
    assert m.frames == 1


# -- windows and the port ------------------------------------------------------------------------------
def test_one_reading_per_window_with_seq_counting_on_from_the_stored_one():
    m = machine(window_s=10, seq=41, boot=3)
    m.step(at(0.0), [PortOpened()])
    readings = []
    for t in range(0, 31):
        readings += m.step(at(t + 0.25, synced=t < 15), [frame(pm25_atm=float(t % 2))]).readings
    assert [(r["ts"], r["n"], r["seq"], r["boot"], r["synced"]) for r in readings] == [
        (T0 + 10, 10, 41, 3, True), (T0 + 20, 10, 42, 3, False), (T0 + 30, 10, 43, 3, False)]
    assert m.seq == 44
    assert readings[0]["pm25_atm"] == 0.5 and readings[0]["channel"] == "a"


def test_a_sensor_just_set_up_opens_no_window_before_its_first_step():
    m = machine(window_s=1)
    assert m.step(at(0.9), [PortOpened()]).readings == []
    assert m.step(at(1.05)).readings == []  # no n=0 reading for the window the port opened in
    assert [r["n"] for r in m.step(at(2.0)).readings] == [0]  # live from T0+1 on: gaps show


def test_a_lost_port_drops_the_open_window_and_a_live_sensor_without_frames_reports_n0():
    m = machine(window_s=10)
    m.step(at(0.0), [PortOpened()])
    for t in range(1, 6):
        m.step(at(t), [frame()])
    m.step(at(6.0), [PortLost()])
    assert m.step(at(10.5)).readings == []  # the window of a lost port is no reading
    m.step(at(19.5), [PortOpened()])
    assert m.step(at(20.2)).readings == []  # joined late: the T0+20 window is not published
    (reading,) = m.step(at(30.1)).readings  # awake, port open, no frame: n=0, a visible gap
    assert (reading["ts"], reading["n"]) == (T0 + 30, 0)


# -- flash-kept settings -------------------------------------------------------------------------------
def sds_reply(frame_hex: str) -> CommandReply:
    (event,) = sds011.Parser().feed(bytes.fromhex(frame_hex))
    return event


def test_a_flash_setting_that_differs_is_written_once_and_a_matching_one_never():
    m = machine("sds011")
    m.step(at(0.0), [PortOpened()])
    query_mode = sds_reply("aa c5 02 00 01 00 a1 60 04 ab")  # "get": the sensor is in query mode
    active = sds_reply("aa c5 02 00 00 00 a1 60 03 ab")  # "get": active, as the bridge wants
    written = sds_reply("aa c5 02 01 00 00 a1 60 04 ab")  # the answer to our "set"
    assert m.step(at(1.0), [query_mode]).commands == [sds011.set_report_mode(sds011.MODE_ACTIVE)]
    assert m.step(at(2.0), [written, active]).commands == []


# -- duty cycle and laser hours ----------------------------------------------------------------------------
def run_duty_cycle(m: SensorMachine, seconds: int, *, mono_offset: float = 0.0):
    """One frame a second while awake, steps every half second; what came out."""
    commands, readings, saves = [], [], []

    def take(step):
        commands.extend(step.commands)
        readings.extend(step.readings)
        if step.laser_s is not None:
            saves.append(step.laser_s)

    take(m.step(at(0.0), [PortOpened()]))
    for half in range(1, 2 * seconds + 1):
        t = half / 2
        events = [frame()] if m.awake and t == int(t) else []
        take(m.step(at(t, mono=MONO0 + mono_offset + t), events))
    return commands, readings, saves


def test_duty_cycle_wakes_for_warm_up_and_one_window_then_sleeps():
    m = machine(window_s=60, warmup_s=30, duty_period_s=300)
    commands, readings, saves = run_duty_cycle(m, 610)
    wake, sleep = plantower.COMMANDS["wake"], plantower.COMMANDS["sleep"]
    # Awake at start (warm-up 0..30), asleep, then awake 210..300 and 510..600 for each window.
    assert [c for c in commands if c in (wake, sleep)] == [wake, sleep, wake, sleep, wake, sleep]
    assert [(r["ts"], r["n"]) for r in readings] == [(T0 + 300, 60), (T0 + 600, 60)]
    # 1..29, 211..239, 511..539: a frame of the step that wakes the sensor came before it woke.
    assert m.sampler.discarded_warmup == 29 + 29 + 29
    # Laser on: 0..30.5 (slept at the first half-second past warm-up), 210..300, 510..600.
    assert m.laser_s == pytest.approx(30.5 + 90 + 90)
    assert saves[-1] == int(m.laser_s)  # saved when put to sleep
    assert saves == sorted(saves)


def test_laser_time_is_measured_on_the_monotonic_clock():
    # The wall clock jumps (first NTP sync of a Pi without RTC); laser time does not.
    m = machine(window_s=10)
    m.step(Now(100.0, 10.0), [PortOpened()])
    m.step(Now(T0 + 0.0, 15.0))
    m.step(Now(T0 + 5.0, 20.0), [Stopping()])
    assert m.laser_s == pytest.approx(10.0)


def test_laser_seconds_are_saved_at_most_once_a_minute_and_at_stop():
    m = machine(window_s=10, laser_s=7200.0)  # two hours from earlier boots
    m.step(at(0.0), [PortOpened()])
    saves = [(t, s.laser_s) for t in range(1, 200) if (s := m.step(at(float(t)))).laser_s is not None]
    assert [t for t, _ in saves] == [61, 122, 183]
    assert all(saved == 7200 + t for t, saved in saves)
    stop = m.step(at(190.5), [Stopping()])
    assert stop.laser_s == 7390 and stop.commands == [] and stop.readings == []
    assert LASER_SAVE_S == 60.0


def test_laser_hours_of_a_sleeping_sensor_are_not_saved_again_at_stop():
    m = machine(window_s=60, warmup_s=30, duty_period_s=300)
    run_duty_cycle(m, 100)  # asleep since 30.5
    before = m.laser_s
    assert m.step(at(150.0), [Stopping()]).laser_s is None
    assert m.laser_s == before


# -- bad input -------------------------------------------------------------------------------------
def test_a_model_of_another_family_is_refused():
    with pytest.raises(ValueError, match="not one of this family's"):
        SensorMachine(plantower, station="lab-1", model="sds011")


@pytest.mark.parametrize("duty", [60, 90], ids=["shorter than warm-up and window", "not a multiple"])
def test_a_duty_period_the_windows_cannot_fit_is_refused(duty):
    with pytest.raises(ValueError, match="duty period"):
        machine(window_s=60, warmup_s=30, duty_period_s=duty)


# -- against the simulated sensors: bytes both ways, no port ------------------------------------------
def converse(model: str, seconds: float, *, dt: float = 0.1, behaviour=None, **kw):
    """The machine and a simulated sensor talking through their parsers, on one clock."""
    sensor = behaviour or behaviour_for(model, lambda: AIR)
    parser = family(model).Parser(model)
    m = machine(model, **kw)
    readings, written = [], []

    def apply(step, now):
        readings.extend(step.readings)
        written.extend(step.commands)
        return [reply for c in step.commands for reply in sensor.on_bytes(c, now.mono)]

    pending = apply(m.step(at(0.0), [PortOpened()]), at(0.0))
    for k in range(1, int(seconds / dt) + 1):
        now = at(k * dt)
        sent = pending + sensor.poll(now.mono)
        pending = apply(m.step(now, parser.feed(b"".join(sent))), now)
    return m, sensor, parser, readings, written


@pytest.mark.parametrize("model", ["pms5003", "pms5003st", "sds011", "sps30"])
def test_every_family_measures_through_its_protocol(model):
    m, sensor, parser, readings, _ = converse(model, 31.0, window_s=10)
    measured = [r for r in readings if r["n"]]
    assert [r["ts"] for r in measured] == [T0 + 10, T0 + 20, T0 + 30]
    assert all(r["pm25_atm"] == pytest.approx(9.0) and r["sensor"] == model for r in measured)
    assert not parser.stats.errors


def test_sds011_left_in_query_mode_is_switched_to_active_with_one_flash_write():
    from firmware_bridge.sensors.sds011_sim import Sds011Behaviour

    sensor = Sds011Behaviour(values=lambda: AIR, report_mode=sds011.MODE_QUERY)
    m, sensor, _, readings, written = converse("sds011", 12.0, behaviour=sensor, window_s=10)
    assert sensor.report_mode == sds011.MODE_ACTIVE and sensor.flash_writes == 1
    assert written.count(sds011.set_report_mode(sds011.MODE_ACTIVE)) == 1
    assert [r["n"] for r in readings if r["n"]]


def test_duty_cycled_plantower_really_sleeps_between_windows():
    m, sensor, _, readings, _ = converse("pms5003", 65.0, dt=0.25, window_s=10, duty_period_s=30)
    assert not sensor.awake  # asleep after the T0+60 window
    assert [r["ts"] for r in readings if r["n"]] == [T0 + 30, T0 + 60]
    # Awake from the open until the first step (no warm-up: nothing to wait for), then
    # 20..30 and 50..60: the laser is off outside the published windows.
    assert m.laser_s == pytest.approx(0.25 + 10 + 10)


# -- any sequence of events ----------------------------------------------------------------------------------
EVENTS = {
    "nothing": [],
    "frame": [frame()],
    "zero frame": [frame(pm25_atm=0.0, n0_3=0.0, n0_5=0.0)],
    "opened": [PortOpened()],
    "lost": [PortLost()],
    "reply": [CommandReply("pms5003", plantower.CMD_MODE, b"\x01")],
    "lost and reopened": [PortLost(), PortOpened()],
}


@settings(max_examples=200, deadline=None)
@given(window=st.sampled_from([1, 10, 60]), warmup=st.sampled_from([0, 5, 30]),
       periods=st.sampled_from([0, 2, 5]),
       script=st.lists(st.tuples(st.floats(0.0, 40.0), st.sampled_from(sorted(EVENTS))), max_size=80))
def test_any_event_sequence_gives_contract_readings_in_order(window, warmup, periods, script):
    duty = periods * window * -(-(window + warmup) // window)  # a multiple of the window that fits
    m = machine(window_s=window, warmup_s=warmup, duty_period_s=duty, seq=5)
    t, readings, laser = 0.0, [], 0.0
    for dt, name in script:
        t += dt
        step = m.step(at(t), EVENTS[name])
        readings += step.readings
        assert m.laser_s >= laser  # laser time never runs backwards
        laser = m.laser_s
        assert all(isinstance(c, bytes) and c for c in step.commands)
    for r in readings:
        contract.validate_reading(r, "lab-1")
        assert r["ts"] % window == 0 and r["window"] == window
    assert [r["seq"] for r in readings] == list(range(5, 5 + len(readings)))
    assert [r["ts"] for r in readings] == sorted({r["ts"] for r in readings})  # one per window, in order
    assert m.laser_s <= t + 1e-6  # never more laser time than time passed
