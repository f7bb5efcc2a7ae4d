"""Station onboarding: MQTT credentials in Mosquitto's password file, and a registry.

Owns the password-file format Mosquitto 2 reads (the lines ``mosquitto_passwd``
writes), the small JSON registry of stations (name, position, when added or
revoked) kept beside it, and the bridge TOML snippet a volunteer pastes. It must
not talk to the broker: after a change, the broker re-reads its password file on
SIGHUP (``docker compose kill -s SIGHUP mosquitto``, ``systemctl reload mosquitto``
or :meth:`civicair.services.Mosquitto.reload`); until then it still accepts the
old credentials.

A station's clear password is printed once, in the snippet, and stored nowhere:
the password file holds a PBKDF2-SHA512 hash, the registry holds no secret.

Standard library only, so it runs in any civicair install.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

#: The id pattern of wire contract v1 (firmware_bridge/contract.py), repeated here so
#: that onboarding runs without the bridge package; a test keeps the two equal.
STATION_ID_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
_STATION_ID_RE = re.compile(STATION_ID_PATTERN + r"\Z")

#: MQTT accounts of our own services (see deploy/mosquitto/acl). A station may not take
#: one of these names, nor any other name with this prefix, so that an ACL ``user``
#: block can never be claimed by a volunteer's station.
INGEST_ACCOUNT = "civicair-ingest"
RESERVED_PREFIX = "civicair-"

#: Mosquitto 2 (``mosquitto_passwd -H sha512-pbkdf2``, the default): ``$7$`` then the
#: iteration count, a 12-byte salt and the 64-byte PBKDF2-HMAC-SHA512 digest, both in
#: standard base64 with padding. 101 iterations is mosquitto_passwd's default; the
#: broker reads the count from each line, so a larger one works too.
PBKDF2_ID = 7
SHA512_ID = 6  # Mosquitto 1.x salted SHA-512; read for old files, never written
DEFAULT_ITERATIONS = 101
SALT_BYTES = 12


class StationError(Exception):
    """A request that cannot be carried out; the message says what to do."""


# -- password hashes --------------------------------------------------------------------


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """The password-file hash of ``password``: ``$7$<iterations>$<salt>$<digest>``."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"${PBKDF2_ID}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` (or Mosquitto 1.x ``$6$``) hash."""
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[0] == "" and parts[1] == str(PBKDF2_ID):
            iterations = int(parts[2])
            salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
        elif len(parts) == 4 and parts[0] == "" and parts[1] == str(SHA512_ID):
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            candidate = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, digest)


def new_password() -> str:
    """A random password: 24 bytes from the OS generator, URL-safe (TOML- and shell-safe)."""
    return secrets.token_urlsafe(24)


def is_station_id(value: str) -> bool:
    return _STATION_ID_RE.match(value) is not None


def check_station_id(station: str) -> str:
    if not is_station_id(station):
        raise StationError(
            f"station id {station!r} must match {STATION_ID_PATTERN} "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )
    if station.startswith(RESERVED_PREFIX):
        raise StationError(
            f"station ids starting with {RESERVED_PREFIX!r} are reserved for civicair services")
    return station


# -- files ----------------------------------------------------------------------------


def _write_atomically(path: Path, text: str, default_mode: int) -> None:
    """Replace ``path`` in one rename, keeping its mode and (when we may) its owner.

    The broker reads the file as its own user (uid 1883 in eclipse-mosquitto images):
    a rewrite must not leave it unreadable to that user, nor world-readable.
    """
    try:
        st = path.stat()
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = default_mode, None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if owner is not None and owner != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):
                os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself is durable once the dir is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@dataclass(frozen=True, slots=True)
class PasswordEntry:
    username: str
    hash: str


class PasswordFile:
    """Mosquitto's password file: one ``username:hash`` line per account, order kept.

    Lines this class does not understand (blank lines) are dropped on save; Mosquitto
    itself accepts nothing else.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, str] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text().splitlines(), 1):
                line = line.strip()
                if not line:
                    continue
                username, sep, encoded = line.partition(":")
                if not sep or not username:
                    raise StationError(f"{self.path}:{number}: not a 'username:hash' line")
                self.entries[username] = encoded

    def __contains__(self, username: str) -> bool:
        return username in self.entries

    def set(self, username: str, password: str, iterations: int = DEFAULT_ITERATIONS) -> None:
        if ":" in username or "\n" in username:
            raise StationError(f"username {username!r} may not contain ':' or a newline")
        self.entries[username] = hash_password(password, iterations=iterations)

    def remove(self, username: str) -> bool:
        return self.entries.pop(username, None) is not None

    def check(self, username: str, password: str) -> bool:
        encoded = self.entries.get(username)
        return encoded is not None and verify_password(password, encoded)

    def save(self) -> None:
        text = "".join(f"{u}:{h}\n" for u, h in self.entries.items())
        _write_atomically(self.path, text, default_mode=0o600)


@dataclass(slots=True)
class StationRecord:
    id: str
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    added: str | None = None
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


class Registry:
    """``stations.json``: who each station is and when it was added or revoked. No secrets."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.stations: dict[str, StationRecord] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text() or "{}")
                for sid, rec in raw.get("stations", {}).items():
                    self.stations[sid] = StationRecord(id=sid, **{k: v for k, v in rec.items() if k != "id"})
            except (ValueError, TypeError) as exc:
                raise StationError(f"{self.path}: not a civicair station registry ({exc})") from None

    def save(self) -> None:
        body = {"stations": {sid: {k: v for k, v in asdict(rec).items() if k != "id"}
                             for sid, rec in sorted(self.stations.items())}}
        _write_atomically(self.path, json.dumps(body, indent=2, ensure_ascii=False) + "\n",
                          default_mode=0o600)


def default_registry_path(passwd_file: str | Path) -> Path:
    return Path(passwd_file).with_name("stations.json")


@contextlib.contextmanager
def _locked(passwd_file: Path) -> Iterator[None]:
    """One writer at a time: two `station add` runs must not lose each other's line."""
    lock_path = passwd_file.with_name(f".{passwd_file.name}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- ACL --------------------------------------------------------------------------------

#: The ACL line that lets a station publish below its own id (deploy/mosquitto/acl).
#: The ACL lines that let each station publish its own topics (deploy/mosquitto/acl).
STATION_ACL_PATTERNS = tuple(f"pattern write civicair/v1/%u/{leaf}"
                             for leaf in ("readings", "status", "meta"))


#: The ACL line that lets each station read the ingest's confirmations of its own stored
#: readings; without it bridges keep deleting on PUBACK (docs/delivery.md).
STATION_STORED_ACL = "pattern read civicair/v1/%u/stored"


def acl_lets_stations_read_confirmations(acl_file: str | Path) -> bool:
    """Whether the ACL file lets each station read its own stored confirmations."""
    for line in Path(acl_file).read_text().splitlines():
        words = line.split()
        if (len(words) == 3 and words[0] == "pattern" and words[1] in ("read", "readwrite")
                and words[2] == STATION_STORED_ACL.split()[2]):
            return True
    return False


def acl_grants_stations(acl_file: str | Path) -> bool:
    """Whether the ACL file lets each station write its readings, status and meta (each
    by its own pattern, or by ``civicair/v1/%u/#``)."""
    granted: set[str] = set()
    for line in Path(acl_file).read_text().splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "pattern" and words[1] in ("write", "readwrite"):
            granted.add(words[2])
    return "civicair/v1/%u/#" in granted or all(p.split()[2] in granted for p in STATION_ACL_PATTERNS)


# -- operations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewStation:
    record: StationRecord
    password: str  # shown once, never stored


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_station(station: str, passwd_file: str | Path, *, name: str | None = None,
                lat: float | None = None, lon: float | None = None, registry: str | Path | None = None,
                acl_file: str | Path | None = None, replace: bool = False,
                iterations: int = DEFAULT_ITERATIONS) -> NewStation:
    """Create (or with ``replace``, rotate) a station's MQTT account."""
    check_station_id(station)
    if lat is not None and not -90 <= lat <= 90:
        raise StationError(f"latitude {lat} is outside -90..90")
    if lon is not None and not -180 <= lon <= 180:
        raise StationError(f"longitude {lon} is outside -180..180")
    if acl_file is not None and not acl_grants_stations(acl_file):
        raise StationError(
            f"{acl_file} does not contain '{STATION_ACL_PATTERNS[0]}' (and …/status, …/meta): "
            "the broker would refuse every reading of the new station"
        )
    passwd_path = Path(passwd_file)
    if not passwd_path.parent.is_dir():
        raise StationError(f"directory {passwd_path.parent} does not exist")
    with _locked(passwd_path):
        passwords = PasswordFile(passwd_path)
        reg = Registry(registry or default_registry_path(passwd_path))
        if station in passwords and not replace:
            raise StationError(
                f"station {station!r} already has credentials; use --replace to issue a new password "
                "(the old one stops working when the broker reloads)"
            )
        password = new_password()
        passwords.set(station, password, iterations=iterations)
        old = reg.stations.get(station)
        record = StationRecord(
            id=station,
            name=name if name is not None else (old.name if old else None),
            lat=lat if lat is not None else (old.lat if old else None),
            lon=lon if lon is not None else (old.lon if old else None),
            added=_now(),
        )
        reg.stations[station] = record
        # Password file first: a crash between the two saves leaves a working account
        # that `station list` reports as unregistered, never a registered station
        # that cannot log in.
        passwords.save()
        reg.save()
    return NewStation(record, password)


def revoke_station(station: str, passwd_file: str | Path, registry: str | Path | None = None) -> bool:
    """Remove a station's credentials; its data stays. Returns whether it had any."""
    passwd_path = Path(passwd_file)
    with _locked(passwd_path):
        passwords = PasswordFile(passwd_path)
        reg = Registry(registry or default_registry_path(passwd_path))
        had = passwords.remove(station)
        if had:
            passwords.save()
        record = reg.stations.get(station)
        if record is not None and record.revoked is None:
            record.revoked = _now()
            reg.save()
    return had or record is not None


@dataclass(frozen=True, slots=True)
class StationStatus:
    record: StationRecord
    #: "active" (can log in), "revoked", "unregistered" (in the password file only) or
    #: "no credentials" (registered, not revoked, missing from the password file).
    status: str


def list_stations(passwd_file: str | Path, registry: str | Path | None = None) -> list[StationStatus]:
    passwd_path = Path(passwd_file)
    passwords = PasswordFile(passwd_path)
    reg = Registry(registry or default_registry_path(passwd_path))
    out: list[StationStatus] = []
    accounts = {u for u in passwords.entries if not u.startswith(RESERVED_PREFIX)}
    for sid in sorted(set(reg.stations) | accounts):
        record = reg.stations.get(sid, StationRecord(id=sid))
        if sid not in reg.stations:
            status = "unregistered"
        elif record.revoked:
            status = "revoked"
        elif sid in passwords:
            status = "active"
        else:
            status = "no credentials"
        out.append(StationStatus(record, status))
    return out


# -- the volunteer's snippet -------------------------------------------------------------------


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


BRIDGE_TOML = "/etc/civicair/bridge.toml"
BRIDGE_ENV = "/etc/civicair/bridge.env"


def bridge_snippet(new: NewStation, mqtt_host: str, mqtt_port: int, tls: bool = True,
                   serial_port: str = "/dev/serial0", sensor: str = "pms5003",
                   inline_password: bool = False) -> str:
    """The bridge config for ``/etc/civicair/bridge.toml`` (docs/raspberry-pi.md).

    The password goes in the TOML only with ``inline_password``; by default it is left
    to ``bridge.env`` (``CIVICAIR_MQTT_PASSWORD``, see :func:`bridge_env`), as the Pi
    guide installs it, so the TOML can be shared when asking for help.
    """
    r = new.record
    lines = [
        f"# civicair bridge configuration for station {r.id}, issued {r.added}.",
        f"# Save as {BRIDGE_TOML}; see docs/raspberry-pi.md.",
        f"station = {_toml_string(r.id)}",
    ]
    if r.name is not None:
        lines.append(f"name = {_toml_string(r.name)}")
    if r.lat is not None and r.lon is not None:
        lines += [f"lat = {r.lat!r}", f"lon = {r.lon!r}"]
    lines += [
        "",
        "[mqtt]",
        f"host = {_toml_string(mqtt_host)}",
        f"port = {int(mqtt_port)}",
        f"username = {_toml_string(r.id)}",
    ]
    if inline_password:
        lines.append(f"password = {_toml_string(new.password)}  # keep this file private: chmod 600")
    else:
        lines.append(f"# password: in {BRIDGE_ENV} (CIVICAIR_MQTT_PASSWORD)")
    lines += [
        f"tls = {'true' if tls else 'false'}",
        "",
        "[[sensor]]",
        f"port = {_toml_string(serial_port)}  # the Pi's UART; a USB adapter is /dev/ttyUSB0",
        f"model = {_toml_string(sensor)}",
        'channel = "a"',
        "",
    ]
    return "\n".join(lines)


def bridge_env(new: NewStation) -> str:
    """The line for ``/etc/civicair/bridge.env`` (mode 600): the station's password."""
    return f"CIVICAIR_MQTT_PASSWORD={new.password}\n"
