"""The bridge process: one thread per sensor, a spool, one MQTT publisher.

serial bytes -> sans-IO parser -> sensor state machine (sampler inside) -> spool (durable)
-> publisher (QoS 1)

Owns the threads and the wiring; the sensor logic (warm-up, zero guard, duty cycle,
polling, laser accounting) is :mod:`firmware_bridge.sensorloop`'s and must stay there.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time

from civicair.schema import contract
from firmware_bridge import __version__, systemd
from firmware_bridge.clock import clock_synced
from firmware_bridge.config import BridgeConfig, SensorConfig
from firmware_bridge.publisher import Publisher
from firmware_bridge.sensorloop import Input, Now, PortLost, PortOpened, SensorMachine, Step, Stopping
from firmware_bridge.sensors import family
from firmware_bridge.serial_reader import SerialPort
from firmware_bridge.spool import Spool

log = logging.getLogger("civicair.bridge")


class SensorLoop(threading.Thread):
    """The I/O shell of one sensor: port bytes -> parser -> :class:`SensorMachine` -> port
    writes, spool rows and the persisted laser seconds. Every decision is the machine's."""

    def __init__(self, bridge: Bridge, sensor: SensorConfig) -> None:
        super().__init__(name=f"sensor-{sensor.channel}", daemon=True)
        self.bridge = bridge
        self.sensor = sensor
        self.proto = family(sensor.model)
        self.parser = self.proto.Parser(sensor.model)
        cfg = bridge.config
        self.topic = contract.readings_topic(cfg.station)
        self.seq_key = f"seq_{sensor.channel}"
        self.laser_key = f"laser_s_{sensor.channel}"
        self.machine = SensorMachine(
            self.proto,
            station=cfg.station,
            model=sensor.model,
            channel=sensor.channel,
            window_s=cfg.window_s,
            warmup_s=cfg.warmup_s,
            duty_period_s=cfg.duty_period_s,
            boot=bridge.boot,
            seq=bridge.spool.get_state(self.seq_key),
            laser_s=float(bridge.spool.get_state(self.laser_key)),
        )
        self.port = SerialPort(sensor.port, self.proto.BAUD_RATE, stop=bridge.stop_event,
                               on_open=self._on_open)

    # What the rest of the bridge (meta) and the tests read.
    @property
    def laser_s(self) -> float:
        return self.machine.laser_s

    @property
    def frames(self) -> int:
        return self.machine.frames

    @property
    def discarded_zero(self) -> int:
        return self.machine.discarded_zero

    @property
    def awake(self) -> bool:
        return self.machine.awake

    # -- I/O -------------------------------------------------------------------------
    def _now(self) -> Now:
        return Now(time.time(), time.monotonic(), self.bridge.synced())

    def _on_open(self, port: SerialPort) -> None:
        """Called by the port right after every (re)open, before its first read."""
        self._apply(self.machine.step(self._now(), [PortOpened()]))

    def _apply(self, step: Step) -> None:
        for command in step.commands:
            self.port.write(command)
        for reading in step.readings:
            payload = json.dumps(reading, separators=(",", ":")).encode()
            self.bridge.spool.put(self.topic, payload, state={self.seq_key: self.machine.seq})
        if step.readings:
            self.bridge.publisher.wake()
        if step.laser_s is not None:
            self.bridge.spool.set_state(self.laser_key, step.laser_s)

    def run(self) -> None:
        stop = self.bridge.stop_event
        while not stop.is_set():
            try:
                self._run()
            except Exception:  # a bug must not silently end the station's measurements
                log.exception("sensor %s loop failed; restarting it in 5 s", self.sensor.channel)
                self.port.close()
                stop.wait(5)
        self._apply(self.machine.step(self._now(), [Stopping()]))
        self.port.close()

    def _run(self) -> None:
        stop = self.bridge.stop_event
        while not stop.is_set():
            data = self.port.read()  # (re)opens the port when needed: see _on_open
            events: list[Input] = []
            if self.machine.port_open and not self.port.is_open:
                events.append(PortLost())
            if data:
                events += self.parser.feed(data)
            self._apply(self.machine.step(self._now(), events))


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
