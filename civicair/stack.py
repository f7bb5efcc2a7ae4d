"""``civicair stack``: the whole pipeline on one machine, with simulated stations.

Starts a Mosquitto broker and an InfluxDB server in a state directory, the
ingest, the API, and N simulated sensors on pseudo-terminals, each read by its
own bridge process. Prints one line per state change and a running count of
readings stored; Ctrl-C (or ``--duration``) stops every process it started.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from civicair.influx import Influx, InfluxError, InfluxSettings
from civicair.services import InfluxDB, Mosquitto, ServiceError, free_port, new_session_dying_with_parent

DATABASE = "airquality"
#: Where the simulated stations stand (lat, lon): a city centre, for the demo map.
DEMO_CENTRE = (52.5200, 13.4050)
#: Sensor models the simulated stations cycle through: with and without humidity, so
#: each correction (and the "uncorrected" flag) shows up in the demo.
DEMO_MODELS = ("pms5003t", "sds011", "pms5003", "sps30", "pms5003st")
#: Simulated temperature/humidity companions (``[[climate]]`` with ``simulate = true``, a
#: simulated part on a simulated I²C bus inside the bridge process), as volunteers pair
#: them: the SDS011 with a BME280 (κ-Köhler), the plain PMS5003 with an SHT31 (US EPA).
#: The PMS5003T/ST measure humidity themselves; the SPS30 has no correction. Model ->
#: (kind, what the readings' ``climate`` field says).
DEMO_COMPANIONS: dict[str, tuple[str, str]] = {"sds011": ("bme280", "bme280"), "pms5003": ("sht3x", "sht31")}


def companion_toml(model: str) -> str:
    """The ``[[climate]]`` table of a demo station's simulated companion ("" for none)."""
    if model not in DEMO_COMPANIONS:
        return ""
    kind, source = DEMO_COMPANIONS[model]
    return f'\n[[climate]]\nkind = "{kind}"\nmodel = "{source}"\nsimulate = true\ninterval = 1\n'


#: How often the stack rebuilds today's partial archive day.
ARCHIVE_EVERY_S = 300.0


def _port_or_free(port: int) -> int:
    """``port`` if it is free on 127.0.0.1, else (and for 0) a free one."""
    if port == 0:
        return free_port()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return free_port()


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen
    log: Path


class Stack:
    def __init__(self, stations: int = 3, state_dir: str | Path = ".civicair/stack",
                 window_s: int = 10, api_port: int = 8000, mqtt_port: int = 1883,
                 influx_port: int = 8086, metrics_port: int = 9108, out=None) -> None:
        self.stations = [f"sim-{i + 1}" for i in range(stations)]
        self.state = Path(state_dir).resolve()
        self.logs = self.state / "logs"
        self.window_s = window_s
        self.ports = {"api": api_port, "mqtt": mqtt_port, "influx": influx_port, "metrics": metrics_port}
        self.out = out or sys.stdout
        self.children: list[_Child] = []
        self.broker: Mosquitto | None = None
        self.influxd: InfluxDB | None = None
        self._archive: subprocess.Popen | None = None  # today's archive build, while it runs
        self._stopping = False
        self._interrupted = threading.Event()  # Ctrl-C or SIGTERM
        self._monitoring = False

    def say(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=self.out, flush=True)

    # -- processes --------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> _Child:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", *args], stdout=f, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                preexec_fn=new_session_dying_with_parent,
            )
        child = _Child(name, proc, log)
        self.children.append(child)
        return child

    def _server_env(self) -> dict[str, str]:
        assert self.broker is not None and self.influxd is not None  # start() made them first
        return {
            "CIVICAIR_MQTT_HOST": "127.0.0.1",
            "CIVICAIR_MQTT_PORT": str(self.broker.port),
            "CIVICAIR_INFLUX_URL": self.influxd.url,
            "CIVICAIR_INFLUX_DB": DATABASE,
            "CIVICAIR_DEADLETTER_PATH": str(self.state / "deadletter.jsonl"),
            "CIVICAIR_ARCHIVE_DIR": str(self.state / "archive"),
        }

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.say(f"state directory {self.state} (logs in {self.logs})")
        self.broker = Mosquitto(self.state / "mosquitto", port=_port_or_free(self.ports["mqtt"]))
        self.broker.start()
        self.say(f"mosquitto up on {self.broker.host}:{self.broker.port}")
        self.influxd = InfluxDB(self.state / "influxdb", port=_port_or_free(self.ports["influx"]))
        self.influxd.start()
        self.say(f"influxdb up on {self.influxd.url}")
        with Influx(InfluxSettings(url=self.influxd.url, database=DATABASE)) as db:
            db.create_database()

        env = self._server_env()
        # The ingest's /metrics and /health: on 9108 as documented, or a free port printed
        # here (another stack or ingest may hold 9108; the user would read its numbers).
        metrics_port = _port_or_free(self.ports["metrics"])
        self._spawn("ingest", ["ingest"], env | {"CIVICAIR_METRICS_HOST": "127.0.0.1",
                                                 "CIVICAIR_METRICS_PORT": str(metrics_port)})
        self.say(f"ingest started; metrics: http://127.0.0.1:{metrics_port}/metrics (and /health)")
        # Hourly/daily rollups (docs/rollups.md); metrics on 9109 or a free port (several stacks may run).
        rollup_port = _port_or_free(9109)
        self._spawn("rollup", ["rollup", "run"], env | {"CIVICAIR_ROLLUP_METRICS_PORT": str(rollup_port),
                                                       "CIVICAIR_ROLLUP_METRICS_HOST": "127.0.0.1",
                                                       "CIVICAIR_ROLLUP_INTERVAL_S": "10"})
        self.say(f"rollup worker started: http://127.0.0.1:{rollup_port}/metrics")
        api_port = _port_or_free(self.ports["api"])
        self._spawn("api", ["api", "--port", str(api_port)], env)
        self.api_url = f"http://127.0.0.1:{api_port}"
        self._wait_http(self.api_url + "/v1/stations")
        self.say(f"API up: {self.api_url}/v1/stations   docs: {self.api_url}/docs")

        for i, station in enumerate(self.stations):
            link = self.state / f"{station}.tty"
            # Names and coordinates, so the map and GeoJSON have something to show: a ring
            # of stations about 2 km around a city centre (a made-up demo, not a real site).
            angle = 2 * math.pi * i / max(1, len(self.stations))
            config = self.state / f"{station}.toml"
            model = DEMO_MODELS[i % len(DEMO_MODELS)]
            config.write_text(
                f'name = "Simulated station {i + 1}"\n'
                f"lat = {DEMO_CENTRE[0] + 0.018 * math.sin(angle):.5f}\n"
                f"lon = {DEMO_CENTRE[1] + 0.028 * math.cos(angle):.5f}\n"
                + companion_toml(model)
            )
            self._spawn(f"simulate-{station}", ["civicair", "simulate", "--sensor", model,
                                                "--rate", "1", "--link", str(link), "--seed", station])
            self._wait_path(link)
            self._spawn(f"bridge-{station}", [
                "firmware_bridge", "--config", str(config), "--station", station, "--port", str(link),
                "--sensor", model,
                "--mqtt-host", "127.0.0.1", "--mqtt-port", str(self.broker.port),
                "--window", str(self.window_s), "--warmup", "0", "--clock", "trusted",
                "--spool", str(self.state / "spool" / f"{station}.sqlite3"),
            ])
            companion = DEMO_COMPANIONS.get(model)
            beside = f" with a simulated {companion[1].upper()}" if companion else ""
            self.say(f"station {station}: simulated {model}{beside} on {link}, bridge started")

    def _wait_http(self, url: str, timeout: float = 30.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise ServiceError(f"{url} did not answer within {timeout:.0f} s; see {self.logs}")

    def _wait_path(self, path: Path, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise ServiceError(f"simulator did not create {path}; see {self.logs}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.say("stopping")
        # Bridges first (they publish "offline" and keep their spool), then the
        # simulators, ingest and API; the servers last.
        if self._archive is not None and self._archive.poll() is None:
            try:
                os.killpg(self._archive.pid, signal.SIGTERM)  # leaves no file: it writes temp, then renames
            except ProcessLookupError:
                pass
            try:
                self._archive.wait(10)
            except subprocess.TimeoutExpired:  # stuck in a C call: a killed build's temp files go next time
                self.say("archive build did not stop on SIGTERM within 10 s; killed "
                         f"(see {self.logs / 'archive.log'})")
                os.killpg(self._archive.pid, signal.SIGKILL)
                self._archive.wait()
        bridges = [c for c in self.children if c.name.startswith("bridge")]
        others = [c for c in self.children if c not in bridges]
        for group in (bridges, others):
            for child in group:
                if child.proc.poll() is None:
                    try:
                        os.killpg(child.proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + 15
            for child in group:
                try:
                    child.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(child.proc.pid, signal.SIGKILL)
                    child.proc.wait()
        for server in (self.broker, self.influxd):
            if server:
                server.stop()
        self.say("stopped; nothing left running")

    # -- main loop ----------------------------------------------------------------------
    def run(self, duration: float | None = None) -> int:
        # Ctrl-C and SIGTERM set a flag that the monitor loop checks, rather than only
        # raising KeyboardInterrupt: an exception raised inside a finaliser (a dropped
        # Popen or HTTP client's __del__) is printed and swallowed, and the stack then ran
        # on for minutes after a Ctrl-C (seen in tests/civicair/test_stack.py). During
        # start-up, whose waits only an exception can cut short, it raises as well.
        def _interrupt(*_):
            first = not self._interrupted.is_set()
            self._interrupted.set()
            if first and not self._monitoring:
                raise KeyboardInterrupt

        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            self.start()
            self._monitor(duration)
        except KeyboardInterrupt:
            pass
        except ServiceError as exc:
            self.say(f"error: {exc}")
            code = 1
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _monitor(self, duration: float | None) -> None:
        end = None if duration is None else time.monotonic() + duration
        assert self.influxd is not None  # start() made it first
        db = Influx(InfluxSettings(url=self.influxd.url, database=DATABASE))
        last_count, last_stations, dead = -1, -1, set()
        next_archive = 0.0  # today's partial day as soon as readings are stored, then every few minutes
        self._monitoring = True
        try:
            while (end is None or time.monotonic() < end) and not self._interrupted.is_set():
                if self._interrupted.wait(min(2.0, max(0.0, end - time.monotonic())) if end else 2.0):
                    break
                for child in self.children:
                    if child.proc.poll() is not None and child.name not in dead:
                        dead.add(child.name)
                        self.say(f"{child.name} exited with {child.proc.returncode}; see {child.log}")
                try:
                    count, stations = self._stored(db)
                except InfluxError as exc:
                    self.say(f"influxdb not answering: {exc}")
                    continue
                if (count, stations) != (last_count, last_stations):
                    self.say(f"stored: {count} readings from {stations} of {len(self.stations)} stations")
                    last_count, last_stations = count, stations
                if self._archive_finished() and count and time.monotonic() >= next_archive:
                    self._archive_today()
                    next_archive = time.monotonic() + ARCHIVE_EVERY_S
        finally:
            db.close()

    def _archive_today(self) -> None:
        """Start building today's partial day of the open-data archive (``civicair archive
        build --day``), so a new user finds it at ``/v1/archive`` at once. A child process in
        the background: pyarrow stays out of the stack's own process, Ctrl-C is not held up,
        and a failed build only costs a log line."""
        today = time.strftime("%Y-%m-%d", time.gmtime())
        with open(self.logs / "archive.log", "ab") as log:
            self._archive = subprocess.Popen(
                [sys.executable, "-m", "civicair", "archive", "build", "--day", today], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **self._server_env()},
                preexec_fn=new_session_dying_with_parent)

    def _archive_finished(self) -> bool:
        """True (and says how it went) once the archive build started last has ended."""
        if self._archive is None or self._archive.poll() is None:
            return self._archive is None
        if self._archive.returncode == 0:
            self.say(f"archive: today's partial day built; {self.api_url}/v1/archive")
        else:
            self.say(f"archive build failed ({self._archive.returncode}); see {self.logs / 'archive.log'}")
        self._archive = None
        return True

    @staticmethod
    def _stored(db: Influx) -> tuple[int, int]:
        (result,) = db.query('SELECT count("n") FROM "pm" GROUP BY "station"')
        rows = result.get("series", []) or []
        return sum(s["values"][0][1] for s in rows), len(rows)
