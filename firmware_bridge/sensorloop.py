"""One sensor's logic as a pure state machine: ``step(now, events) -> Step``.

Owns, for one sensor: setting it up after every (re)open of its port, warm-up, the
all-zero-counts guard after wake, the duty cycle (sleep between windows), polling the
sensors that only answer, rewriting flash-kept settings that differ, laser-on accounting,
and the window :class:`~firmware_bridge.sampler.Sampler`. It must not touch the port,
the spool, MQTT, threads or the clock: the I/O shell (:class:`firmware_bridge.app.SensorLoop`)
passes the time and what happened in, and writes the commands, spools the readings and
persists the laser seconds that come out. This is h11's habit; tests drive it with any
clock and hand-made events, without threads or ports.

One step, in this order (the order the thread has always done it in):

1. port events (:class:`PortOpened`, :class:`PortLost`), in the order given;
2. the sampler's tick: close a window whose end has passed, open one for a live sensor;
3. the parser's events: measurements go to the sampler (once the sensor is awake and
   past the zero guard), replies to the family's ``reconcile``;
4. the duty cycle: wake before each published window, sleep after it;
5. laser-on accounting (persisted at most once a minute, and at each sleep);
6. the poll, for a family with ``POLL``; the status poll, once per window, for a family
   with ``STATUS_POLL`` (a measurement then carries the documented fault bits of the last
   register read into the window's reading: the contract's optional ``status``);
7. a lost port drops the open window: its frames do not make a reading.

A step that (re)opens the port sends the set-up (``INIT_SEQUENCE``) and nothing else to
the sensor: it is not yet live for the tick (a sensor just set up has sent nothing, and
a window opened now could only be published with ``n`` = 0), and its first poll waits
for the next step. The shell takes that step the moment the port opens, before its
first read, so the sensor is set up at once and the next step comes with its answer.

:class:`Step` has a third field beside ``commands`` and ``readings``: the laser-on
seconds to persist now, or None. Persisting is the shell's I/O; when to do it is logic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from civicair.schema.sensors import STATUS_FAULT_BITS
from firmware_bridge.sampler import Sampler
from firmware_bridge.sensors.base import CommandReply, Measurement, SensorFamily

log = logging.getLogger("civicair.bridge")

#: Plantower particle counts: all zero right after wake means the fan is not up yet.
COUNT_FIELDS = ("n0_3", "n0_5", "n1_0", "n2_5", "n5_0", "n10_0")
#: Persist laser-on seconds at most this often (monotonic seconds).
LASER_SAVE_S = 60.0


@dataclass(frozen=True, slots=True)
class Now:
    """The time of a step, read once by the shell.

    ``wall`` (UTC epoch seconds) places windows, warm-up, the duty cycle and polls;
    ``mono`` (monotonic seconds) measures laser-on time, which must not jump when the
    wall clock does (a Pi without RTC boots in 1970 and jumps at its first NTP sync);
    ``synced`` says the wall clock is known good (the readings' ``synced`` field).
    """

    wall: float
    mono: float
    synced: bool = True


@dataclass(frozen=True, slots=True)
class PortOpened:
    """The port was (re)opened: the sensor may have been power-cycled; set it up again."""


@dataclass(frozen=True, slots=True)
class PortLost:
    """The port failed or was closed: frames of a lost port do not make a window."""


@dataclass(frozen=True, slots=True)
class Stopping:
    """The bridge is stopping: account the laser-on time and persist it; nothing else."""


Input = Measurement | CommandReply | PortOpened | PortLost | Stopping


class Step(NamedTuple):
    """What one step asks the shell to do."""

    #: Bytes to write to the sensor, in order.
    commands: list[bytes]
    #: Finished readings (wire contract v1 objects), in order.
    readings: list[dict[str, Any]]
    #: Laser-on seconds to persist now; None when no save is due.
    laser_s: int | None = None


class SensorMachine:
    """The logic of one sensor on one channel; see the module docstring."""

    def __init__(self, family: SensorFamily, *, station: str, model: str, channel: str = "a",
                 window_s: int = 60, warmup_s: float = 0.0, duty_period_s: int = 0,
                 boot: int = 0, seq: int = 0, laser_s: float = 0.0) -> None:
        if model not in family.MODELS:
            raise ValueError(f"model {model!r} is not one of this family's: {', '.join(family.MODELS)}")
        if duty_period_s and (duty_period_s < window_s + warmup_s or duty_period_s % window_s):
            raise ValueError("duty period must be 0 (always on), or a multiple of the window and at "
                             "least window + warmup")
        self.family = family
        self.model, self.channel = model, channel
        self.window_s, self.warmup_s, self.duty_period_s = window_s, warmup_s, duty_period_s
        self.sampler = Sampler(station=station, sensor=model, channel=channel, window_s=window_s,
                               boot=boot, seq=seq)
        #: Frames that went into a window, and all-zero frames dropped right after wake.
        self.frames = 0
        self.discarded_zero = 0
        self.awake = False
        self.port_open = False
        #: Laser-on seconds, all boots together (persisted by the shell).
        self.laser_s = float(laser_s)
        self._zero_guard = False
        self._awake_since: float | None = None  # monotonic
        self._laser_saved: float | None = None  # monotonic; None until the first step
        self._next_poll = 0.0  # wall
        self._next_status_poll = 0.0  # wall
        self._value_polled = False  # the last step sent a value poll
        self._fault_bits = STATUS_FAULT_BITS.get(model, 0)

    @property
    def seq(self) -> int:
        """The ``seq`` of the next reading (persisted with each reading by the shell)."""
        return self.sampler.seq

    # -- the step ------------------------------------------------------------------------
    def step(self, now: Now, events: Iterable[Input] = ()) -> Step:
        commands: list[bytes] = []
        data: list[Measurement | CommandReply] = []
        opened = False
        if self._laser_saved is None:
            self._laser_saved = now.mono
        for event in events:
            if isinstance(event, Stopping):
                return Step([], [], self._account_laser(now, force=True))
            if isinstance(event, PortOpened):
                self.port_open = opened = True
                commands += [self.family.COMMANDS[name] for name in self.family.INIT_SEQUENCE]
                self._woke(now)
            elif isinstance(event, PortLost):
                self.port_open = False
            else:
                data.append(event)
        live = self.awake and self.port_open and not opened
        readings = self.sampler.tick(now.wall, now.synced, live=live)
        for event in data:
            if isinstance(event, Measurement):
                if self.awake and self._keep(event):
                    self.frames += 1
                    readings += self.sampler.add(event.values, now.wall, now.synced,
                                                 event.status & self._fault_bits)
            else:
                commands += self._on_reply(event)
        laser = self._duty(now, commands)
        periodic = self._account_laser(now)
        if periodic is not None:
            laser = periodic
        poll = self.family.POLL
        status_poll = self.family.STATUS_POLL
        # Alone in its step: SHDLC is one request, one answer. After a step that sent a
        # value poll it goes in place of a due one (which then goes at the next step):
        # the shell's reads wait out their timeout (the poll interval), so a value poll
        # is due at nearly every step and would otherwise never leave it a step.
        polled, self._value_polled = self._value_polled, False
        if (status_poll and self.awake and not opened and not commands
                and now.wall >= self._next_status_poll
                and (polled or not poll or now.wall < self._next_poll)):
            commands.append(self.family.COMMANDS[status_poll])
            self._next_status_poll = (now.wall // self.window_s + 1) * self.window_s
        elif poll and self.awake and not opened and now.wall >= self._next_poll:
            commands.append(self.family.COMMANDS[poll[0]])
            self._next_poll = now.wall + poll[1]
            self._value_polled = True
        if not self.port_open:
            self.sampler.discard()
        return Step(commands, readings, laser)

    # -- sensor state ----------------------------------------------------------------------
    def _woke(self, now: Now) -> None:
        self.awake = True
        self._awake_since = now.mono
        self._zero_guard = True
        self.sampler.discard()
        self.sampler.warmup_until = now.wall + self.warmup_s
        if self.warmup_s:
            log.info("sensor %s (%s) awake, warming up for %.0f s", self.channel, self.model, self.warmup_s)

    def _duty(self, now: Now, commands: list[bytes]) -> int | None:
        """Duty cycle: awake only for warm-up + one window before each period boundary.

        Returns the laser-on seconds to persist when the sensor was put to sleep."""
        period = self.duty_period_s
        if not period:
            return None
        boundary = (int(now.wall) // period + 1) * period  # next window end that we publish
        wake_at = boundary - self.window_s - self.warmup_s
        should_be_awake = now.wall >= wake_at
        if should_be_awake and not self.awake:
            commands.append(self.family.COMMANDS["wake"])
            self._woke(now)
            self.sampler.warmup_until = boundary - self.window_s
        elif not should_be_awake and self.awake and self.sampler.warmup_until < now.wall:
            # The measured window has closed (the tick ran first): sleep until the next one.
            commands.append(self.family.COMMANDS["sleep"])
            saved = self._account_laser(now, force=True)
            self.awake = False
            self._awake_since = None
            self.sampler.discard()
            log.info("sensor %s asleep until the next duty-cycle window", self.channel)
            return saved
        return None

    def _account_laser(self, now: Now, force: bool = False) -> int | None:
        """Add the laser-on time since the last call; the seconds to persist when due."""
        if self._awake_since is None:
            return None
        self.laser_s += now.mono - self._awake_since
        self._awake_since = now.mono
        if force or self._laser_saved is None or now.mono - self._laser_saved > LASER_SAVE_S:
            self._laser_saved = now.mono
            return int(self.laser_s)
        return None

    def _on_reply(self, reply: CommandReply) -> list[bytes]:
        """Settings the sensor keeps in flash are rewritten only when they differ."""
        command = self.family.reconcile(reply)
        if not command:
            return []
        log.info("sensor %s (%s): setting 0x%02x differs from what the bridge needs; writing it",
                 self.channel, self.model, reply.command)
        return [command]

    def _keep(self, m: Measurement) -> bool:
        """Right after wake, frames whose particle counts are all zero are dropped (the
        fan is not up yet), until the first frame with a count."""
        if self._zero_guard:
            counts = [m.values[k] for k in COUNT_FIELDS if k in m.values]
            if counts and not any(counts):
                self.discarded_zero += 1
                return False
            self._zero_guard = False
        return True
