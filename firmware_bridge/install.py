"""``civicair bridge install``: a station set up as a service in one command.

What docs/raspberry-pi.md otherwise takes ten commands to do, checked on the way:
the config the operator gave is read and validated before anything is written; the
password goes to ``/etc/civicair/bridge.env`` (mode 600) and never into the TOML;
the systemd unit runs this very installation's ``civicair``; the ``civicair`` system
user is created (member of ``dialout``, and of ``i2c`` when the config has an I²C
humidity companion); ``bridge doctor`` runs; and only if every
check passes is the service enabled and started. Running it again changes nothing
that is already right, and says so.

Owns: planning the files (a pure function, :func:`plan`) and applying them under a
root directory (``/`` on a Pi, a temp dir in the tests). Must not touch anything
outside that root except through ``useradd`` and ``systemctl``, which it runs only
when the root is ``/``.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TextIO

from firmware_bridge import config
from firmware_bridge.errors import ConfigError

CONFIG_PATH = Path("/etc/civicair/bridge.toml")
ENV_PATH = Path("/etc/civicair/bridge.env")
UNIT_PATH = Path("/etc/systemd/system/civicair-bridge.service")
STATE_DIR = Path("/var/lib/civicair")
SERVICE = "civicair-bridge"
USER = "civicair"
#: The command line the shipped unit names; replaced by this installation's own.
SHIPPED_EXEC = "/opt/civicair/bin/civicair"
SHIPPED_GROUPS = "SupplementaryGroups=dialout"
I2C_GROUP = "i2c"


#: Printable ASCII without space, quotes and backslash: stored verbatim by EnvironmentFile.
_SAFE_PASSWORD = re.compile(r"[!#-&(-\[\]-~]+")
#: Characters a unit's ExecStart takes literally (no quoting, no %-specifiers).
_SAFE_PATH = re.compile(r"/[A-Za-z0-9/._+-]+")


class InstallError(RuntimeError):
    """A reason to stop before writing anything (or before starting the service)."""


@dataclass(frozen=True, slots=True)
class FileSpec:
    path: Path  # absolute, as on the Pi
    text: str
    mode: int
    group: str | None = None  # owner root; this group (on the Pi only), else root's


def service_groups(cfg: config.BridgeConfig) -> tuple[str, ...]:
    """The service user's supplementary groups: ``dialout`` for the serial ports, and
    ``i2c`` (owner of ``/dev/i2c-*`` on Raspberry Pi OS) when a ``[[climate]]`` companion
    is on I²C. IIO companions need none: their sysfs files are world-readable."""
    i2c = any(c.kind != "iio" and not c.simulate for c in cfg.climate)
    return ("dialout", I2C_GROUP) if i2c else ("dialout",)


def unit_text(executable: str, groups: tuple[str, ...] = ("dialout",)) -> str:
    """The shipped unit, running ``executable`` (this installation's ``civicair``) with
    ``groups`` as its supplementary groups."""
    shipped = resources.files("firmware_bridge").joinpath("data/civicair-bridge.service").read_text()
    if SHIPPED_EXEC not in shipped or SHIPPED_GROUPS not in shipped:
        raise InstallError("the shipped unit file has no ExecStart or SupplementaryGroups to adapt")
    return shipped.replace(SHIPPED_EXEC, executable).replace(SHIPPED_GROUPS,
                                                             "SupplementaryGroups=" + " ".join(groups))


def own_executable() -> str:
    """This installation's ``civicair`` script (beside the interpreter, as pip puts it)."""
    candidate = Path(sys.executable).parent / "civicair"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("civicair")
    if found:
        return found
    raise InstallError("cannot find the civicair command of this installation; "
                       "run the installer as /path/to/venv/bin/civicair bridge install …")


def read_password(env_file: Path | None, environ: Mapping[str, str], existing: str | None) -> str | None:
    """The MQTT password: from ``--env FILE`` (the operator's ``bridge.env`` lines), else
    ``CIVICAIR_MQTT_PASSWORD``, else the installed bridge.env (a re-run keeps it)."""
    if env_file is not None:
        try:
            text = env_file.read_text()
        except OSError as exc:
            raise InstallError(f"cannot read {env_file}: {exc.strerror}") from None
        value = parse_env(text).get("CIVICAIR_MQTT_PASSWORD")
        if not value:
            raise InstallError(f"{env_file} has no CIVICAIR_MQTT_PASSWORD=… line")
        return value
    if environ.get("CIVICAIR_MQTT_PASSWORD"):
        return environ["CIVICAIR_MQTT_PASSWORD"]
    if existing is not None:
        return parse_env(existing).get("CIVICAIR_MQTT_PASSWORD") or None
    return None


def parse_env(text: str) -> dict[str, str]:
    """``KEY=value`` lines as systemd's EnvironmentFile reads them (comments, quotes)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def plan(config_text: str, password: str | None,
         executable: str) -> tuple[config.BridgeConfig, list[FileSpec]]:
    """Validate the config and return it with the files to install. Pure: no I/O
    beyond parsing; raises :class:`InstallError` with the fix when something is off."""
    if password is not None and not _SAFE_PASSWORD.fullmatch(password):
        raise InstallError("the MQTT password may hold letters, digits and punctuation, but no spaces, "
                           "quotes, backslashes or control characters (systemd would alter them in "
                           "bridge.env); `civicair station add` issues such passwords")
    if not _SAFE_PATH.fullmatch(executable):
        raise InstallError(f"the civicair command's path {executable!r} has characters a systemd unit would "
                           "misread; install civicair under a plain path such as /opt/civicair")
    env = {"CIVICAIR_MQTT_PASSWORD": password} if password else {}
    try:
        cfg = config.load_text(config_text, env=env)
    except ConfigError as exc:
        raise InstallError(str(exc)) from None
    if cfg.mqtt.username and not cfg.mqtt.password:
        raise InstallError(f"the config names MQTT user {cfg.mqtt.username!r} but no password was given: "
                           "pass --env bridge.env (the lines `civicair station add` printed) "
                           "or set CIVICAIR_MQTT_PASSWORD")
    spool = Path(cfg.spool_path)
    if not spool.is_absolute() or STATE_DIR not in spool.parents:
        raise InstallError(f"spool path {cfg.spool_path} is outside {STATE_DIR}: the service may write only "
                           f"there (ProtectSystem=strict); use path = \"{STATE_DIR}/spool.sqlite3\"")
    # A TOML that holds the password (`station add --inline-password`) is readable by the
    # service's group only; otherwise it is world-readable, to be shared when asking for help.
    private = config.has_inline_password(config_text)
    files = [FileSpec(CONFIG_PATH, config_text, 0o640 if private else 0o644, USER if private else None)]
    if password:
        files.append(FileSpec(ENV_PATH, f"CIVICAIR_MQTT_PASSWORD={password}\n", 0o600))
    files.append(FileSpec(UNIT_PATH, unit_text(executable, service_groups(cfg)), 0o644))
    return cfg, files


def _under(root: Path, path: Path) -> Path:
    return root / path.relative_to("/")


def write_files(root: Path, files: list[FileSpec], say: Callable[[str], None]) -> bool:
    """Write each file atomically with its mode (and group, on the Pi); True if any changed."""
    changed = False
    for spec in files:
        target = _under(root, spec.path)
        old = target.read_text() if target.is_file() else None
        old_mode = target.stat().st_mode & 0o777 if target.is_file() else None
        if old == spec.text and old_mode == spec.mode:
            say(f"unchanged {spec.path}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        # A fresh name (O_EXCL: never through a symlink planted there), mode and group
        # set on the descriptor, then renamed over the target.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            os.fchmod(fd, spec.mode)  # the umask must not widen or narrow it
            if spec.group and root == Path("/"):
                os.fchown(fd, 0, grp.getgrnam(spec.group).gr_gid)
            with os.fdopen(fd, "w") as f:
                f.write(spec.text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        say(f"{'updated' if old is not None else 'wrote'} {spec.path} (mode {spec.mode:o})")
        changed = True
    return changed


def ensure_user(say: Callable[[str], None], run: Callable[..., subprocess.CompletedProcess],
                groups: tuple[str, ...] = ("dialout",)) -> None:
    """Create the service user in ``groups``, or add it to those it is not yet in."""
    for group in groups:
        try:
            grp.getgrnam(group)
        except KeyError:
            fix = (" (it appears when I²C is enabled: sudo raspi-config nonint do_i2c 0, then reboot)"
                   if group == I2C_GROUP else "")
            raise InstallError(f"group {group} does not exist on this system{fix}") from None
    try:
        pwd.getpwnam(USER)
    except KeyError:
        run(["useradd", "--system", "--home-dir", str(STATE_DIR), "--no-create-home",
             "--shell", "/usr/sbin/nologin", "--groups", ",".join(groups), USER], check=True)
        say(f"created system user {USER} (groups {', '.join(groups)})")
        return
    missing = [g for g in groups if USER not in grp.getgrnam(g).gr_mem]
    if missing:
        run(["usermod", "--append", "--groups", ",".join(missing), USER], check=True)
        say(f"added {USER} to group{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    else:
        say(f"user {USER} exists (groups {', '.join(groups)})")


def systemd_running() -> bool:
    """sd_booted(): the system was booted with systemd (not a container without it)."""
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def run_doctor(cfg: config.BridgeConfig, root: Path, password: str | None, executable: str, out: TextIO,
               run: Callable[..., subprocess.CompletedProcess]) -> tuple[int, bool]:
    """``bridge doctor`` as the service will run: on the Pi as user civicair (so it checks
    that user's access to the serial port and the spool, and creates the spool as that
    user), with a running service stopped first so the two do not share the port.
    Returns the exit code and whether a running service was stopped."""
    if root != Path("/"):  # the tests: in-process, the spool under the root
        from firmware_bridge import doctor as doctor_module

        spool = str(_under(root, Path(cfg.spool_path)))
        return doctor_module.run(dataclasses.replace(cfg, spool_path=spool), out), False
    stopped = False
    if systemd_running() and run(["systemctl", "is-active", "--quiet", SERVICE]).returncode == 0:
        run(["systemctl", "stop", SERVICE], check=True)
        stopped = True
        print(f"stopped {SERVICE} for the checks (its spool keeps every reading)", file=out, flush=True)
    reach = run(["runuser", "-u", USER, "--", executable, "--help"], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True)
    if reach.returncode != 0:
        print(f"[FAIL] install: user {USER} cannot run {executable} ({reach.stderr.strip()})\n"
              f"       fix: install civicair where that user can read it, as the service will run it:\n"
              f"       sudo python3 -m venv /opt/civicair && sudo /opt/civicair/bin/pip install "
              f"'civicair[bridge]'\n       then: sudo /opt/civicair/bin/civicair bridge install …",
              file=out, flush=True)
        return 1, stopped
    env = {**os.environ, **({"CIVICAIR_MQTT_PASSWORD": password} if password else {})}
    done = run(["runuser", "-u", USER, "--", executable, "bridge", "doctor", "--config", str(CONFIG_PATH)],
               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out.write(done.stdout)
    out.flush()
    return done.returncode, stopped


def install(config_file: Path, *, env_file: Path | None = None, root: Path = Path("/"),
            start: bool = True, doctor: bool = True, out: TextIO | None = None,
            environ: Mapping[str, str] | None = None, executable: str | None = None,
            run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> int:
    """Install the bridge as a service; the exit code (0 ok, 1 doctor failed, 2 bad input)."""
    out = sys.stdout if out is None else out

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    environ = os.environ if environ is None else environ
    system = root == Path("/")
    try:
        if system and os.geteuid() != 0:
            raise InstallError("run it as root: sudo " + " ".join(sys.argv))
        try:
            config_text = config_file.read_text()
        except OSError as exc:
            raise InstallError(f"cannot read {config_file}: {exc.strerror}") from None
        executable = executable or own_executable()
        if system and executable.startswith(("/root/", "/home/")):
            raise InstallError(f"{executable} is under /root or /home, which the service cannot read "
                               "(ProtectHome); install civicair in /opt/civicair (docs/raspberry-pi.md)")
        try:
            inline = config.has_inline_password(config_text)
        except ConfigError:
            inline = False  # plan() reports the broken TOML
        installed_env = _under(root, ENV_PATH)
        # A config holding its own password replaces the installed one (a rotated password
        # must not be overridden by the old bridge.env, which the service reads last).
        existing = installed_env.read_text() if installed_env.is_file() and not inline else None
        password = read_password(env_file, environ, existing)
        cfg, files = plan(config_text, password, executable)
    except InstallError as exc:
        say(f"civicair bridge install: {exc}")
        say("nothing was written")
        return 2
    say(f"config ok: station {cfg.station}, {len(cfg.sensors)} sensor(s), broker "
        f"{cfg.mqtt.host}:{cfg.mqtt.port}{' (TLS)' if cfg.mqtt.tls else ''}")
    if not system:
        say(f"installing under {root} (no user is created, nothing is started)")
    if system:
        try:
            ensure_user(say, run, service_groups(cfg))
        except InstallError as exc:
            say(f"civicair bridge install: {exc}")
            say("nothing was written")
            return 2
    changed = write_files(root, files, say)
    if inline and password is None and installed_env.is_file():
        installed_env.unlink()
        say(f"removed {ENV_PATH} (the config holds the password now)")
        changed = True
    state = _under(root, STATE_DIR)
    state.mkdir(parents=True, exist_ok=True)
    if system:
        shutil.chown(state, USER, USER)
        os.chmod(state, 0o750)
    if doctor:
        say("checking with `civicair bridge doctor`:")
        code, stopped = run_doctor(cfg, root, password, executable, out, run)
        if code != 0:
            if stopped:  # it was running: a failed check must not leave the station off
                run(["systemctl", "start", SERVICE])
                say(f"{SERVICE} was running before the checks and is started again with the new "
                    f"files; fix what failed above, then run this again")
            else:
                say(f"not started: fix what failed above, then run this again (the files are in "
                    f"place; `sudo systemctl enable --now {SERVICE}` starts it as it is)")
            return 1
    start_commands = [["systemctl", "daemon-reload"], ["systemctl", "enable", SERVICE],
                      ["systemctl", "restart" if changed else "start", SERVICE]]
    manual = "to start it: " + " && ".join("sudo " + " ".join(c) for c in start_commands)
    if system and start and systemd_running():
        for command in start_commands:
            if run(command).returncode != 0:
                say(f"`{' '.join(command)}` failed (see above); {manual}")
                return 1
        say(f"service {SERVICE} enabled and {'restarted' if changed else 'running'}")
    elif system and start:
        say(f"systemd is not running on this machine, so nothing was started; {manual}")
    else:
        say(manual)
    say(f"logs: journalctl -u {SERVICE} -f    check again: civicair bridge doctor --config {CONFIG_PATH}")
    return 0
