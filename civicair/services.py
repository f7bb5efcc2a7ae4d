"""Real Mosquitto and InfluxDB servers in a state directory, on free ports.

Used by the tests (fresh temp dirs) and by ``civicair stack`` (a local state
directory). Each server gets a generated config, is waited for until it
answers, and is stopped (SIGTERM, then SIGKILL) with its whole process group.
A missing binary raises an error that names the Debian package to install.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


class ServiceError(RuntimeError):
    pass


_PR_SET_PDEATHSIG = 1


def new_session_dying_with_parent() -> None:
    """In the child before exec: its own session (Ctrl-C goes to the parent only), and
    SIGTERM when the process that started it dies, even by SIGKILL: a test run or a
    stack that is killed leaves no server behind. Pass as ``preexec_fn`` to Popen,
    instead of ``start_new_session=True``."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the servers are still stopped by stop() on a clean exit


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # the Linux default


_handed_out: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 that stays free until a server binds it.

    Binding to port 0 would return a port from the kernel's ephemeral range, the
    range every outgoing connection also draws from: between our choosing it and
    the server binding it, any client socket (a test's HTTP client, the bridge's
    MQTT connection) can take it, and the server fails with "address already in
    use". So we pick at random below (or above) that range, where the kernel never
    assigns a port on its own, and never hand the same port out twice in a process.
    """
    low, high = _ephemeral_range()
    pools = [(p_low, p_high) for p_low, p_high in ((10000, low - 1), (high + 1, 65535))
             if p_high - p_low > 1000]
    rng = random.SystemRandom()
    for _ in range(200):
        p_low, p_high = rng.choice(pools) if pools else (1024, 65535)
        port = rng.randint(p_low, p_high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # a crowded machine: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str, package: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ServiceError(
        f"{name} is not installed: install the Debian package '{package}' "
        f"(sudo apt-get install {package})"
    )


class _Server:
    name = "server"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.state_dir / f"{self.name}.log"
        #: What the process prints (start-up errors); the same file unless a server
        #: writes its own log (see Mosquitto).
        self.output_path = self.log_path
        #: Where each output file ended when the current start began (its new lines follow).
        self._offsets: dict[Path, int] = {}

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    #: True when this server chose its own ports: if one was taken after all, a first
    #: start may choose others. A restart keeps its ports (its clients know them).
    auto_ports = False
    _started = False

    def choose_ports(self) -> None:
        raise NotImplementedError

    def _output_tail(self, offsets: dict[Path, int]) -> str:
        text = ""
        for path, offset in offsets.items():
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    text += f.read().decode(errors="replace")
            except OSError:
                pass
        return text

    def start(self, timeout: float = 30.0) -> _Server:
        for attempt in range(3):
            offsets = {path: (path.stat().st_size if path.exists() else 0)
                       for path in {self.output_path, self.log_path}}
            self._offsets = offsets
            log = open(self.output_path, "ab")
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=new_session_dying_with_parent,
            )
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    output = self._output_tail(offsets)
                    if ("address already in use" in output.lower() and self.auto_ports
                            and not self._started and attempt < 2):
                        break  # another process took a port: choose new ones, try again
                    raise ServiceError(
                        f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                        + output[-2000:]
                    )
                if self.ready():
                    self._started = True
                    return self
                time.sleep(0.05)
            else:
                break
            self.choose_ports()
        self.stop()
        raise ServiceError(f"{self.name} did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL: an unclean stop, as a power cut or the OOM killer would do."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Mosquitto(_Server):
    """A Mosquitto 2 broker. ``extra_config`` lines are appended to the generated file."""

    name = "mosquitto"

    def __init__(self, state_dir: Path, port: int | None = None, extra_config: str = "",
                 persistence: bool = True, allow_anonymous: bool = True,
                 password_file: str | Path | None = None, acl_file: str | Path | None = None) -> None:
        super().__init__(state_dir)
        self.binary = _binary("mosquitto", "mosquitto")
        self.host = "127.0.0.1"
        self.auto_ports = port is None
        self.port = port or free_port()
        self.extra_config = extra_config
        self.persistence = persistence
        #: The shipped deploy/mosquitto config refuses anonymous clients and names a
        #: password file and an ACL file; the tests run the same rules on this harness.
        self.allow_anonymous = allow_anonymous
        self.password_file = Path(password_file).resolve() if password_file else None
        self.acl_file = Path(acl_file).resolve() if acl_file else None
        self.config_path = self.state_dir / "mosquitto.conf"
        self.output_path = self.state_dir / "mosquitto.out"

    def write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            *([f"password_file {self.password_file}"] if self.password_file else []),
            *([f"acl_file {self.acl_file}"] if self.acl_file else []),
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.state_dir}/",
            "autosave_interval 1",
            # Started as root, mosquitto switches to the 'mosquitto' user, which cannot
            # write its persistence file in our (root-owned, 0700) state dir: sessions and
            # queued messages would then be lost on restart. Our instance runs as its caller.
            *(["user root"] if os.geteuid() == 0 else []),
            # Defaults sized for a bridge backlog and a batched ingest: see deploy/mosquitto/.
            "max_queued_messages 1000000",
            "max_inflight_messages 1000",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            # A log file, flushed line by line (stdout into a file is block-buffered, so
            # its lines would appear only when the broker exits).
            f"log_dest file {self.log_path}",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        self.config_path.write_text("\n".join(lines) + "\n" + self.extra_config + "\n")

    def command(self) -> list[str]:
        self.write_config()
        return [self.binary, "-c", str(self.config_path)]

    def ready(self) -> bool:
        # A connect alone is not proof: if another process holds the port, the connect
        # reaches it while our broker logs "Address already in use" and exits. Mosquitto
        # logs "... running" once every listener is open.
        if " running" not in self._output_tail({self.log_path: self._offsets.get(self.log_path, 0)}):
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def choose_ports(self) -> None:
        self.port = free_port()

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password and ACL files (and not its listeners)."""
        if not self.running:
            raise ServiceError(f"{self.name} is not running")
        assert self.proc is not None  # running implies a process
        os.kill(self.proc.pid, signal.SIGHUP)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


class InfluxDB(_Server):
    """An InfluxDB 1.x server (the /write + /query API every version serves)."""

    name = "influxd"

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        super().__init__(state_dir)
        self.binary = _binary("influxd", "influxdb")
        self.host = "127.0.0.1"
        self.auto_ports = port is None
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.config_path = self.state_dir / "influxdb.conf"

    def write_config(self) -> None:
        d = self.state_dir
        self.config_path.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  # Small caches: the tests and the local stack run beside everything else.
  cache-snapshot-memory-size = 26214400
  index-version = "inmem"

[monitor]
  store-enabled = false

[http]
  bind-address = "{self.host}:{self.port}"
  log-enabled = false
  max-row-limit = 0

[continuous_queries]
  enabled = false
"""
        )

    def command(self) -> list[str]:
        self.write_config()
        return [self.binary, "run", "-config", str(self.config_path)]

    def choose_ports(self) -> None:
        self.port = free_port()
        self.rpc_port = free_port()

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as resp:
                return resp.status == 204
        except (urllib.error.URLError, OSError):
            return False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
