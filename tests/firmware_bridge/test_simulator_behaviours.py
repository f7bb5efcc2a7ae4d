"""Simulated sensors answer host commands byte for byte as the datasheets say, stream
when the real sensor would, inject faults on request, and speak through a real pty."""

from __future__ import annotations

import os
import random
import time

import pytest
import serial

from civicair import cli
from firmware_bridge.sensors import FAMILIES, plantower, sds011, sps30
from firmware_bridge.sensors.base import CommandReply, Measurement
from firmware_bridge.simulator import (
    Faults,
    PlantowerBehaviour,
    PtySimulator,
    Sds011Behaviour,
    Sps30Behaviour,
    behaviour_for,
)

H = bytes.fromhex


# -- Plantower ---------------------------------------------------------------------------------
PMS_VALUES = {"pm1_atm": 4, "pm25_atm": 11, "pm10_atm": 14, "n0_3": 1203}
PMS_FRAME = plantower.encode_frame("pms5003", PMS_VALUES)


def pms(**kw):
    return PlantowerBehaviour("pms5003", lambda: PMS_VALUES, **kw)


def test_plantower_streams_once_per_period_when_active():
    sensor = pms(rate_hz=10)
    sent = [f for t in (0.0, 0.05, 0.1, 0.15, 0.2) for f in sensor.poll(t)]
    assert sent == [PMS_FRAME] * 3
    assert sensor.frames == 3
    assert sensor.next_due() == pytest.approx(0.3)


@pytest.mark.parametrize("command, ack", [
    ("passive_mode", "424d0004e1000174"),  # 42+4D+04+E1 = 0x174
    ("active_mode", "424d0004e1010175"),
    ("sleep", "424d0004e4000177"),
])
def test_plantower_acknowledges_mode_and_sleep_with_the_8_byte_frame(command, ack):
    assert pms().on_bytes(plantower.COMMANDS[command], 0.0) == [H(ack)]


def test_plantower_passive_mode_stops_the_stream_and_answers_reads():
    sensor = pms()
    sensor.poll(0.0)
    sensor.on_bytes(plantower.COMMANDS["passive_mode"], 0.1)
    assert sensor.poll(5.0) == [] and sensor.next_due() is None
    assert sensor.on_bytes(plantower.COMMANDS["passive_read"], 5.1) == [PMS_FRAME]
    sensor.on_bytes(plantower.COMMANDS["active_mode"], 6.0)
    assert sensor.poll(6.5) == [] and sensor.poll(7.0) == [PMS_FRAME]


def test_plantower_sleeps_silently_and_wakes_without_an_ack():
    sensor = pms()
    sensor.poll(0.0)
    sensor.on_bytes(plantower.COMMANDS["sleep"], 0.5)
    assert sensor.poll(10.0) == []
    assert sensor.on_bytes(plantower.COMMANDS["passive_read"], 10.5) == []  # asleep: no answer
    assert sensor.on_bytes(plantower.COMMANDS["wake"], 11.0) == []
    assert sensor.poll(11.5) == [] and sensor.poll(12.0) == [PMS_FRAME]


def test_plantower_ignores_bad_commands_and_finds_good_ones_in_noise():
    sensor = pms()
    bad = plantower.COMMANDS["sleep"][:-1] + b"\x00"
    assert sensor.on_bytes(bad, 0.0) == []
    assert sensor.awake
    split = b"\x42\x42\x00" + plantower.COMMANDS["passive_mode"]
    replies = [r for i in range(len(split)) for r in sensor.on_bytes(split[i : i + 1], 0.0)]
    assert replies == [H("424d0004e1000174")]


# -- SDS011 --------------------------------------------------------------------------------------
SDS_VALUES = {"pm25_atm": 12.3, "pm10_atm": 45.6}
SDS_FRAME = H("aa c0 7b 00 c8 01 a1 60 45 ab")  # device id A160


def sds(**kw):
    return Sds011Behaviour(values=lambda: SDS_VALUES, **kw)


def test_sds011_streams_in_active_continuous_mode():
    sensor = sds(rate_hz=1)
    assert [f for t in (0.0, 0.5, 1.0, 2.0) for f in sensor.poll(t)] == [SDS_FRAME] * 3


@pytest.mark.parametrize("command, reply", [
    pytest.param(sds011.set_report_mode(sds011.MODE_QUERY, 0xA160), "aa c5 02 01 01 00 a1 60 05 ab",
                 id="set query mode, to A160"),
    pytest.param(sds011.COMMANDS["get_report_mode"], "aa c5 02 00 00 00 a1 60 03 ab",
                 id="get report mode"),
    pytest.param(sds011.COMMANDS["sleep"], "aa c5 06 01 00 00 a1 60 08 ab", id="set sleep"),
    pytest.param(sds011.COMMANDS["get_work_state"], "aa c5 06 00 01 00 a1 60 08 ab",
                 id="get work state"),
    pytest.param(sds011.set_working_period(1), "aa c5 08 01 01 00 a1 60 0b ab",
                 id="set working period 1"),
    pytest.param(sds011.COMMANDS["get_working_period"], "aa c5 08 00 00 00 a1 60 09 ab",
                 id="get working period"),
    pytest.param(sds011.set_device_id(0xA001, 0xA160), "aa c5 05 00 00 00 a0 01 a6 ab",
                 id="set device id A160 -> A001"),
    pytest.param(sds011.COMMANDS["firmware_version"], "aa c5 07 0f 07 0a a1 60 28 ab",
                 id="firmware version"),
    pytest.param(sds011.COMMANDS["passive_read"], "aa c0 7b 00 c8 01 a1 60 45 ab", id="query data"),
])
def test_sds011_answers_each_command_byte_for_byte(command, reply):
    assert sds().on_bytes(command, 0.0) == [H(reply)]


def test_sds011_query_mode_stops_the_stream_until_asked():
    sensor = sds()
    sensor.poll(0.0)
    sensor.on_bytes(sds011.COMMANDS["passive_mode"], 0.1)
    assert sensor.poll(10.0) == []
    assert sensor.on_bytes(sds011.COMMANDS["passive_read"], 10.0) == [SDS_FRAME]
    sensor.on_bytes(sds011.COMMANDS["active_mode"], 11.0)
    assert sensor.poll(12.0) == [SDS_FRAME]


def test_sds011_asleep_hears_only_set_work():
    sensor = sds()
    sensor.on_bytes(sds011.COMMANDS["sleep"], 0.0)
    assert sensor.poll(5.0) == []
    for name in ("get_report_mode", "passive_read", "get_work_state", "firmware_version", "sleep"):
        assert sensor.on_bytes(sds011.COMMANDS[name], 5.0) == [], name
    assert sensor.on_bytes(sds011.COMMANDS["wake"], 6.0) == [H("aa c5 06 01 01 00 a1 60 09 ab")]
    assert sensor.poll(6.5) == [] and sensor.poll(7.0) == [SDS_FRAME]


def test_sds011_working_period_sends_one_frame_every_n_minutes():
    sensor = sds()
    assert sensor.poll(0.0) == [SDS_FRAME]
    sensor.on_bytes(sds011.set_working_period(2), 0.5)
    sent = [t for t in range(1, 400) for _ in sensor.poll(t + 0.5)]
    assert sent == [120, 240, 360]


def test_sds011_ignores_commands_to_another_id_and_bad_frames():
    sensor = sds()
    assert sensor.on_bytes(sds011.set_report_mode(sds011.MODE_QUERY, 0x1234), 0.0) == []
    bad = sds011.COMMANDS["passive_mode"][:17] + b"\x00\xab"
    assert sensor.on_bytes(bad, 0.0) == []
    assert sensor.report_mode == sds011.MODE_ACTIVE and sensor.flash_writes == 0


def test_sds011_finds_a_command_split_and_wrapped_in_noise():
    sensor = sds()
    stream = b"\xaa\xb4\x00\xaa" + sds011.COMMANDS["firmware_version"] + b"\xaa"
    replies = [r for i in range(len(stream)) for r in sensor.on_bytes(stream[i : i + 1], 0.0)]
    assert replies == [H("aa c5 07 0f 07 0a a1 60 28 ab")]


def test_sds011_new_device_id_is_used_in_later_frames():
    sensor = sds()
    sensor.on_bytes(sds011.set_device_id(0xA001), 0.0)
    assert sensor.on_bytes(sds011.COMMANDS["passive_read"], 1.0) == [H("aa c0 7b 00 c8 01 a0 01 e5 ab")]
    assert sensor.on_bytes(sds011.set_report_mode(0, 0xA160), 1.0) == []  # the old id is gone


def host_session(sensor, wanted_mode, wanted_period, now):
    """What the bridge does after opening the port: INIT_SEQUENCE, then writes only what differs."""
    parser = sds011.Parser()
    replies = [r for name in sds011.INIT_SEQUENCE for r in sensor.on_bytes(sds011.COMMANDS[name], now)]
    events = [e for r in replies for e in parser.feed(r)]
    wanted = {"report_mode": (wanted_mode, sds011.set_report_mode),
              "working_period": (wanted_period, sds011.set_working_period)}
    for event in events:
        setting = sds011.read_setting(event)
        if setting and setting.name in wanted:
            value, build = wanted[setting.name]
            if sds011.write_needed(event, value):
                sensor.on_bytes(build(value), now)


def test_sds011_flash_settings_are_written_once_then_never_again():
    sensor = sds(report_mode=sds011.MODE_QUERY, working_period=0)
    sensor.working = False  # left asleep by the last run: INIT_SEQUENCE wakes it first
    host_session(sensor, sds011.MODE_ACTIVE, 0, now=0.0)
    assert (sensor.report_mode, sensor.working_period, sensor.flash_writes) == (0, 0, 1)
    for restart in range(1, 4):
        host_session(sensor, sds011.MODE_ACTIVE, 0, now=float(restart))
    assert sensor.flash_writes == 1


# -- SPS30 -------------------------------------------------------------------------------------------
SPS_VALUES = {"pm1_atm": 1.5, "pm25_atm": 2.5, "pm4_atm": 3.0, "pm10_atm": 3.25, "nc0_5": 10.0,
              "nc1_0": 12.0, "nc2_5": 12.5, "nc4_0": 12.625, "nc10_0": 12.75, "tps": 0.5}
SPS_FRAME = H("7e 00 03 00 28 3fc00000 40200000 40400000 40500000 41200000 41400000 41480000"
              " 414a0000 414c0000 3f000000 a3 7e")
C = sps30.COMMANDS
START_OK = H("7e 00 00 00 00 ff 7e")
STOP_OK = H("7e 00 01 00 00 fe 7e")
READ_EMPTY = H("7e 00 03 00 00 fc 7e")
SLEEP_OK = H("7e 00 10 00 00 ef 7e")
WAKE_OK = H("7e 00 7d 31 00 00 ee 7e")  # 0x11 stuffed
FAN_CLEANING_OK = H("7e 00 56 00 00 a9 7e")
RESET_OK = H("7e 00 d3 00 00 2c 7e")


def sensor_sps(**kw):
    return Sps30Behaviour(values=lambda: SPS_VALUES, **kw)


def measuring(**kw):
    sensor = sensor_sps(**kw)
    assert sensor.on_bytes(C["start"], 0.0) == [START_OK]
    return sensor


def test_sps30_starts_idle_and_refuses_to_read_until_started():
    sensor = sensor_sps()
    assert sensor.on_bytes(C["read_values"], 0.0) == [H("7e 00 03 43 00 b9 7e")]  # 03+43 -> ~46
    assert sensor.on_bytes(C["stop"], 0.0) == [H("7e 00 01 43 00 bb 7e")]
    assert sensor.on_bytes(C["fan_cleaning"], 0.0) == [H("7e 00 56 43 00 66 7e")]


def test_sps30_new_reading_every_second_and_empty_answers_between():
    sensor = measuring()
    assert sensor.on_bytes(C["read_values"], 0.5) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 1.0) == [SPS_FRAME]
    assert sensor.on_bytes(C["read_values"], 1.4) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 3.7) == [SPS_FRAME]  # the latest, once
    assert sensor.on_bytes(C["read_values"], 3.9) == [READ_EMPTY]
    assert sensor.frames == 2
    assert sensor.poll(10.0) == [] and sensor.next_due() is None  # it never streams


def test_sps30_start_while_measuring_is_not_allowed():
    sensor = measuring()
    assert sensor.on_bytes(C["start"], 1.0) == [H("7e 00 00 43 00 bc 7e")]


@pytest.mark.parametrize("command, reply", [
    pytest.param(sps30.mosi(sps30.START, b"\x01"), "7e 00 00 01 00 fe 7e", id="start, wrong length"),
    pytest.param(sps30.mosi(sps30.START, b"\x01\x04"), "7e 00 00 04 00 fb 7e",
                 id="start, illegal format"),
    pytest.param(sps30.mosi(0x42), "7e 00 42 02 00 bb 7e", id="unknown command"),
    pytest.param(sps30.mosi(sps30.DEVICE_INFO, b"\x01"), "7e 00 d0 04 00 2b 7e",
                 id="device info, reserved subcommand"),
    pytest.param(sps30.mosi(sps30.DEVICE_STATUS, b"\x02"), "7e 00 d2 04 00 29 7e",
                 id="status, illegal clear flag"),
])
def test_sps30_execution_errors_in_the_state_byte(command, reply):
    assert sensor_sps().on_bytes(command, 0.0) == [H(reply)]


def test_sps30_ignores_frames_it_cannot_read():
    sensor = sensor_sps()
    bad_checksum = C["start"][:-2] + b"\x00\x7e"
    other_address = H("7e 01 00 02 01 03 f8 7e")  # a valid start for ADR 1: the SPS30 is 0
    assert sensor.on_bytes(bad_checksum + other_address + b"\x00\x13", 0.0) == []
    assert sensor.mode == sensor.IDLE


def test_sps30_stop_then_sleep_then_wake_with_the_low_pulse():
    sensor = measuring()
    assert sensor.on_bytes(C["enter_sleep"], 1.0) == [H("7e 00 10 43 00 ac 7e")]  # only from idle
    assert sensor.on_bytes(C["stop"], 1.0) == [STOP_OK]
    assert sensor.on_bytes(C["enter_sleep"], 1.0) == [SLEEP_OK]
    assert sensor.on_bytes(C["read_values"], 2.0) == []  # UART off
    assert sensor.on_bytes(b"\xff" + C["wake_up"], 3.0) == [WAKE_OK]
    assert sensor.mode == sensor.IDLE


def test_sps30_wake_up_sent_twice_wakes_on_the_second():
    sensor = sensor_sps()
    sensor.on_bytes(C["enter_sleep"], 0.0)
    assert sensor.on_bytes(C["wake_up"], 1.0) == []  # enables the UART only
    assert sensor.on_bytes(C["wake_up"], 1.05) == [WAKE_OK]


def test_sps30_uart_closes_again_100_ms_after_the_pulse():
    sensor = sensor_sps()
    sensor.on_bytes(C["enter_sleep"], 0.0)
    assert sensor.on_bytes(b"\xff", 1.0) == []
    assert sensor.on_bytes(C["read_values"], 1.05) == []  # heard, but only wake-up counts
    assert sensor.on_bytes(C["wake_up"], 1.2) == []  # too late: this one is the new pulse
    assert sensor.mode == sensor.SLEEPING


def test_sps30_family_verbs_sleep_and_wake_round_trip():
    sensor = measuring()
    assert sensor.on_bytes(C["sleep"], 1.0) == [STOP_OK, SLEEP_OK]
    assert sensor.mode == sensor.SLEEPING
    assert sensor.on_bytes(C["wake"], 5.0) == [WAKE_OK, START_OK]
    assert sensor.mode == sensor.MEASURING
    assert sensor.on_bytes(C["read_values"], 6.0) == [SPS_FRAME]


def test_sps30_fan_cleaning_freezes_readings_for_10_seconds():
    sensor = measuring()
    assert sensor.on_bytes(C["fan_cleaning"], 1.5) == [FAN_CLEANING_OK]
    assert sensor.on_bytes(C["read_values"], 5.0) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 11.4) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 11.6) == [SPS_FRAME]


def test_sps30_device_information_and_version():
    sensor = sensor_sps()
    # Product type: the datasheet's frame, with the checksum the rule gives (0x9E).
    assert sensor.on_bytes(C["product_type"], 0.0) == [
        H("7e 00 d0 00 09 30 30 30 38 30 30 30 30 00 9e 7e")]
    assert sensor.on_bytes(C["serial_number"], 0.0) == [
        sps30.miso(sps30.DEVICE_INFO, b"SIMULATED-SPS30\x00")]
    assert sensor.on_bytes(C["read_version"], 0.0) == [
        H("7e 00 d1 00 07 02 02 00 07 00 02 00 1a 7e")]  # firmware 2.2, hardware 7, SHDLC 2.0


def test_sps30_status_register_reports_injected_faults_and_clears():
    flags = sps30.StatusFlag.FAN_FAILURE | sps30.StatusFlag.FAN_SPEED_WARNING
    sensor = sensor_sps(faults=flags)
    assert sensor.on_bytes(C["read_status"], 0.0) == [H("7e 00 d2 00 05 00 00 00 00 00 28 7e")]
    sensor.on_bytes(C["start"], 0.0)
    # Measuring, the faults show; FAN is an error flag, so every state byte has bit 7.
    read = sensor.on_bytes(C["read_values"], 1.0)
    assert read == [sps30.encode_frame("sps30", SPS_VALUES, sps30.ERROR_FLAG)]
    assert sensor.on_bytes(C["read_status"], 1.0) == [H("7e 00 d2 80 05 00 20 00 10 00 78 7e")]
    sensor.on_bytes(C["stop"], 2.0)
    # Read and clear: the answer still holds the register as it was; then it is clear.
    assert sensor.on_bytes(C["read_and_clear_status"], 2.0) == [
        H("7e 00 d2 80 05 00 20 00 10 00 78 7e")]
    assert sensor.on_bytes(C["read_status"], 2.0) == [H("7e 00 d2 00 05 00 00 00 00 00 28 7e")]


def test_sps30_reset_returns_to_idle_after_answering():
    sensor = measuring()
    assert sensor.on_bytes(C["reset"], 1.0) == [RESET_OK]
    assert sensor.mode == sensor.IDLE


def test_sps30_auto_cleaning_interval_read_and_written_to_flash():
    sensor = sensor_sps()
    # 604 800 s = 0x00093A80: 80+04+09+3A+80 = 0x147 -> ~47 = B8.
    assert sensor.on_bytes(C["read_cleaning_interval"], 0.0) == [H("7e 00 80 00 04 00 09 3a 80 b8 7e")]
    assert sensor.on_bytes(sps30.write_cleaning_interval(0), 0.0) == [H("7e 00 80 00 00 7f 7e")]
    assert sensor.on_bytes(C["read_cleaning_interval"], 0.0) == [H("7e 00 80 00 04 00 00 00 00 7b 7e")]
    assert sensor.flash_writes == 1


def test_sps30_uint16_format_round_trips_through_the_parser():
    sensor = sensor_sps()
    sensor.on_bytes(C["start_uint16"], 0.0)
    (frame,) = sensor.on_bytes(C["read_values"], 1.0)
    (event,) = sps30.Parser().feed(frame)
    assert event.values == {**{k: float(round(v)) for k, v in SPS_VALUES.items()}, "tps": 0.5}


# -- registry and fault injection ------------------------------------------------------------------
@pytest.mark.parametrize("sensor", sorted(FAMILIES))
def test_every_contract_sensor_has_a_behaviour(sensor):
    behaviour = behaviour_for(sensor)
    assert behaviour.model == sensor
    with pytest.raises(ValueError):
        behaviour_for("sds021")


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
