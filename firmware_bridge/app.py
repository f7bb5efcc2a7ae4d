"""The bridge process: one thread per sensor, a spool, one MQTT publisher.

serial bytes -> sans-IO parser -> sampler -> spool (durable) -> publisher (QoS 1)
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time

from firmware_bridge import __version__, contract, systemd
from firmware_bridge.clock import clock_synced
from firmware_bridge.config import BridgeConfig, SensorConfig
from firmware_bridge.publisher import Publisher
from firmware_bridge.sampler import Sampler
from firmware_bridge.sensors import family
from firmware_bridge.sensors.base import CommandReply, Measurement
from firmware_bridge.serial_reader import SerialPort
from firmware_bridge.spool import Spool

log = logging.getLogger("civicair.bridge")

#: Plantower particle counts: all zero right after wake means the fan is not up yet.
_COUNT_FIELDS = ("n0_3", "n0_5", "n1_0", "n2_5", "n5_0", "n10_0")
#: Persist laser-on seconds at most this often.
_LASER_SAVE_S = 60.0


class SensorLoop(threading.Thread):
    def __init__(self, bridge: Bridge, sensor: SensorConfig) -> None:
        super().__init__(name=f"sensor-{sensor.channel}", daemon=True)
        self.bridge = bridge
        self.sensor = sensor
        self.proto = family(sensor.model)
        self.parser = self.proto.Parser(sensor.model)
        cfg = bridge.config
        self.seq_key = f"seq_{sensor.channel}"
        self.laser_key = f"laser_s_{sensor.channel}"
        self.sampler = Sampler(
            station=cfg.station,
            sensor=sensor.model,
            channel=sensor.channel,
            window_s=cfg.window_s,
            boot=bridge.boot,
            seq=bridge.spool.get_state(self.seq_key),
        )
        self.port = SerialPort(sensor.port, self.proto.BAUD_RATE, stop=bridge.stop_event,
                               on_open=self._initialise)
        self.frames = 0
        self.discarded_zero = 0
        self.awake = False
        self._zero_guard = False
        self._awake_since: float | None = None
        self.laser_s = float(bridge.spool.get_state(self.laser_key))
        self._laser_saved = time.monotonic()
        poll = getattr(self.proto, "POLL", None)  # (command name, period s) for sensors that must be asked
        self._poll = poll
        self._next_poll = 0.0

    # -- sensor state ----------------------------------------------------------------
    def _initialise(self, port: SerialPort) -> None:
        """After every (re)open: the sensor may have been power-cycled; set it up again."""
        for name in getattr(self.proto, "INIT_SEQUENCE", ()):
            port.write(self.proto.COMMANDS[name])
        self._woke(time.time())

    def _woke(self, now: float) -> None:
        self.awake = True
        self._awake_since = time.monotonic()
        self._zero_guard = True
        self.sampler.discard()
        self.sampler.warmup_until = now + self.bridge.config.warmup_s
        if self.bridge.config.warmup_s:
            log.info("sensor %s (%s) awake, warming up for %.0f s", self.sensor.channel,
                     self.sensor.model, self.bridge.config.warmup_s)

    def _sleep(self) -> None:
        if "sleep" in self.proto.COMMANDS:
            self.port.write(self.proto.COMMANDS["sleep"])
        self._account_laser(force=True)
        self.awake = False
        self._awake_since = None
        self.sampler.discard()
        log.info("sensor %s asleep until the next duty-cycle window", self.sensor.channel)

    def _wake(self, now: float) -> None:
        if "wake" in self.proto.COMMANDS:
            self.port.write(self.proto.COMMANDS["wake"])
        self._woke(now)

    def _account_laser(self, force: bool = False) -> None:
        if self._awake_since is None:
            return
        now = time.monotonic()
        self.laser_s += now - self._awake_since
        self._awake_since = now
        if force or now - self._laser_saved > _LASER_SAVE_S:
            self.bridge.spool.set_state(self.laser_key, int(self.laser_s))
            self._laser_saved = now

    def _duty(self, now: float) -> None:
        """Duty cycle: awake only for warm-up + one window before each period boundary."""
        period = self.bridge.config.duty_period_s
        if not period:
            return
        cfg = self.bridge.config
        boundary = (int(now) // period + 1) * period  # next window end that we publish
        wake_at = boundary - cfg.window_s - cfg.warmup_s
        should_be_awake = now >= wake_at
        if should_be_awake and not self.awake:
            self._wake(now)
            self.sampler.warmup_until = boundary - cfg.window_s
        elif not should_be_awake and self.awake and self.sampler.warmup_until < now:
            # The measured window has closed (tick ran first): sleep until the next one.
            self._sleep()

    def _on_reply(self, reply: CommandReply) -> None:
        """Settings the sensor keeps in flash are rewritten only when they differ."""
        reconcile = getattr(self.proto, "reconcile", None)
        command = reconcile(reply) if reconcile else None
        if command:
            log.info("sensor %s (%s): setting 0x%02x differs from what the bridge needs; writing it",
                     self.sensor.channel, self.sensor.model, reply.command)
            self.port.write(command)

    def _keep(self, m: Measurement) -> bool:
        if self._zero_guard:
            counts = [m.values[k] for k in _COUNT_FIELDS if k in m.values]
            if counts and not any(counts):
                self.discarded_zero += 1
                return False
            self._zero_guard = False
        return True

    # -- loop ------------------------------------------------------------------------
    def run(self) -> None:
        stop = self.bridge.stop_event
        while not stop.is_set():
            try:
                self._run()
            except Exception:  # a bug must not silently end the station's measurements
                log.exception("sensor %s loop failed; restarting it in 5 s", self.sensor.channel)
                self.port.close()
                stop.wait(5)
        self._account_laser(force=True)
        self.port.close()

    def _run(self) -> None:
        topic = contract.readings_topic(self.bridge.config.station)
        stop = self.bridge.stop_event
        while not stop.is_set():
            data = self.port.read()
            now = time.time()
            synced = self.bridge.synced()
            readings = self.sampler.tick(now, synced, live=self.awake and self.port.is_open)
            for event in self.parser.feed(data) if data else ():
                if isinstance(event, Measurement) and self.awake and self._keep(event):
                    self.frames += 1
                    readings += self.sampler.add(event.values, now, synced)
                elif isinstance(event, CommandReply):
                    self._on_reply(event)
            for reading in readings:
                payload = json.dumps(reading, separators=(",", ":")).encode()
                self.bridge.spool.put(topic, payload, state={self.seq_key: self.sampler.seq})
            if readings:
                self.bridge.publisher.wake()
            self._duty(now)
            self._account_laser()
            if self._poll and self.awake and now >= self._next_poll:
                self.port.write(self.proto.COMMANDS[self._poll[0]])
                self._next_poll = now + self._poll[1]
            if not self.port.is_open:
                self.sampler.discard()  # frames of a lost port do not make a window


class Bridge:
    #: Re-publish the retained meta message (laser hours, spool figures) this often.
    META_EVERY_S = 3600.0

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.spool = Spool(
            config.spool_path,
            max_rows=config.spool_max_rows,
            max_age_s=config.spool_max_age_days * 86400,
            resend_after_s=config.spool_resend_after_s,
            resend_max_s=config.spool_resend_max_s,
        )
        self.boot = self.spool.next_boot()
        self.publisher = Publisher(self.spool, config.station, config.mqtt, meta=self.meta(),
                                   confirmations=config.spool_confirmations)
        self.loops = [SensorLoop(self, s) for s in config.sensors]
        self._synced_at = -1e9
        self._synced = False

    def meta(self) -> dict:
        meta = self.config.meta(f"civicair {__version__}")
        loops = getattr(self, "loops", [])
        meta["laser_hours"] = {loop.sensor.channel: round(loop.laser_s / 3600, 2) for loop in loops}
        unconfirmed, oldest = self.spool.unconfirmed()
        meta["spool"] = {"evicted": self.spool.evicted, "boot": self.boot,
                         "unconfirmed": unconfirmed, "oldest_unconfirmed_s": round(oldest)}
        return meta

    def synced(self) -> bool:
        if self.config.clock == "trusted":
            return True
        now = time.monotonic()
        if now - self._synced_at > 60:
            self._synced = bool(clock_synced())
            self._synced_at = now
        return self._synced

    def start(self) -> None:
        log.info("bridge for station %s starting (boot %d, spool %s holds %d readings)",
                 self.config.station, self.boot, self.config.spool_path, len(self.spool))
        self.publisher.meta = self.meta()
        self.publisher.start()
        for loop in self.loops:
            loop.start()
        systemd.notify("READY=1")

    def stop(self) -> None:
        self.stop_event.set()
        for loop in self.loops:
            loop.join(5)
        self.publisher.meta = self.meta()
        self.publisher.stop()
        log.info("bridge stopped; %d readings wait in the spool", len(self.spool))
        self.spool.close()

    def healthy(self) -> bool:
        return all(loop.is_alive() for loop in self.loops)

    def run_forever(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        self.start()
        next_meta = time.monotonic() + self.META_EVERY_S
        try:
            while not self.stop_event.wait(1.0):
                if self.healthy():
                    systemd.notify("WATCHDOG=1")  # a hung loop stops these; systemd restarts us
                if time.monotonic() >= next_meta:
                    self.publisher.publish_meta(self.meta())
                    next_meta = time.monotonic() + self.META_EVERY_S
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def run(config: BridgeConfig) -> None:
    Bridge(config).run_forever()
