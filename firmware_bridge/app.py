"""The bridge process: one thread per sensor, a spool, one MQTT publisher.

serial bytes -> sans-IO parser -> sampler -> spool (durable) -> publisher (QoS 1)
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time

from firmware_bridge import __version__, contract
from firmware_bridge.clock import clock_synced
from firmware_bridge.config import BridgeConfig, SensorConfig
from firmware_bridge.publisher import Publisher
from firmware_bridge.sampler import Sampler
from firmware_bridge.sensors import family
from firmware_bridge.sensors.base import Measurement
from firmware_bridge.serial_reader import SerialPort
from firmware_bridge.spool import Spool

log = logging.getLogger("civicair.bridge")


class SensorLoop(threading.Thread):
    def __init__(self, bridge: Bridge, sensor: SensorConfig) -> None:
        super().__init__(name=f"sensor-{sensor.channel}", daemon=True)
        self.bridge = bridge
        self.sensor = sensor
        self.proto = family(sensor.model)
        self.parser = self.proto.Parser(sensor.model)
        cfg = bridge.config
        self.seq_key = f"seq_{sensor.channel}"
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

    def _initialise(self, port: SerialPort) -> None:
        """(Re)initialise after every open: wake the laser, active reporting, warm up."""
        for name in getattr(self.proto, "INIT_SEQUENCE", ()):
            port.write(self.proto.COMMANDS[name])
        self.sampler.warmup_until = time.time() + self.bridge.config.warmup_s
        if self.bridge.config.warmup_s:
            log.info("sensor %s (%s) warming up for %.0f s", self.sensor.channel,
                     self.sensor.model, self.bridge.config.warmup_s)

    def run(self) -> None:
        topic = contract.readings_topic(self.bridge.config.station)
        stop = self.bridge.stop_event
        while not stop.is_set():
            data = self.port.read()
            now = time.time()
            synced = self.bridge.synced()
            readings = self.sampler.tick(now, synced)
            for event in self.parser.feed(data) if data else ():
                if isinstance(event, Measurement):
                    self.frames += 1
                    readings += self.sampler.add(event.values, now, synced)
            for reading in readings:
                self.bridge.spool.put(topic, json.dumps(reading, separators=(",", ":")).encode())
                self.bridge.spool.set_state(self.seq_key, self.sampler.seq)
                log.debug("reading %s", reading)
            if readings:
                self.bridge.publisher.wake()
        self.port.close()


class Bridge:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.spool = Spool(
            config.spool_path,
            max_rows=config.spool_max_rows,
            max_age_s=config.spool_max_age_days * 86400,
        )
        self.boot = self.spool.next_boot()
        self.publisher = Publisher(self.spool, config.station, config.mqtt,
                                   meta=config.meta(f"civicair {__version__}"))
        self.loops = [SensorLoop(self, s) for s in config.sensors]
        self._synced_at = 0.0
        self._synced = False

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
        self.publisher.start()
        for loop in self.loops:
            loop.start()

    def stop(self) -> None:
        self.stop_event.set()
        for loop in self.loops:
            loop.join(5)
        self.publisher.stop()
        log.info("bridge stopped; %d readings wait in the spool", len(self.spool))
        self.spool.close()

    def run_forever(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        self.start()
        try:
            while not self.stop_event.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def run(config: BridgeConfig) -> None:
    Bridge(config).run_forever()
