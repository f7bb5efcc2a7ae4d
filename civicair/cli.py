"""``civicair`` command line. Each subcommand imports only what it needs, so
``civicair bridge`` and ``civicair simulate`` run with the ``bridge`` extra alone."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT,
                        datefmt="%Y-%m-%dT%H:%M:%S")
    # One line per state change: the HTTP client's per-request lines are noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


# -- argument types: a clear message instead of "invalid <lambda> value" or a traceback --
def _number(cast, *, minimum: float | None = None, above: float | None = None, maximum: float | None = None):
    def check(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if cast is int else 'a number'}: {text!r}") \
                from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be more than {above:g}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {text}")
        return value
    return check


def _bits(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer (e.g. 0x20 or 32): {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"pm25_atm\": 12}}', "
                                         f"got {text!r}")
    return value


_PORT = _number(int, minimum=0, maximum=65535)
_CHANCE = _number(float, minimum=0, maximum=1)


# -- simulate -------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    from firmware_bridge.simulator import PtySimulator, Sps30Behaviour

    sim = PtySimulator(args.sensor, rate_hz=args.rate, values=args.values, seed=args.seed,
                       link=args.link, garbage=args.garbage, drop=args.drop, stall=args.stall,
                       stall_seconds=args.stall_seconds)
    if args.faults:
        if not isinstance(sim.behaviour, Sps30Behaviour):
            print("--faults: only the SPS30 has a device status register", file=sys.stderr)
            return 2
        sim.behaviour.faults = args.faults
    where = f"{sim.path} (linked from {args.link})" if args.link else sim.path
    print(f"simulated {args.sensor} on {where} at {args.rate:g} Hz", flush=True)
    print(sim.path, flush=True)
    try:
        sim.run(duration=args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    return 0


# -- bridge ---------------------------------------------------------------------------
def cmd_bridge(args: argparse.Namespace) -> int:
    from firmware_bridge import app, config
    from firmware_bridge.errors import ConfigError

    if args.action == "install":
        from firmware_bridge import install

        if not args.config:
            print("civicair bridge install: give --config FILE (the config `civicair station add` printed)",
                  file=sys.stderr)
            return 2
        return install.install(Path(args.config), env_file=Path(args.env_file) if args.env_file else None,
                               root=Path(args.root), start=not args.no_start, doctor=not args.skip_doctor)
    _logging(args.verbose)
    cli = {
        "station": args.station,
        "clock": args.clock,
        "mqtt": {"host": args.mqtt_host, "port": args.mqtt_port},
        "sampling": {"window": args.window_s, "warmup": args.warmup_s},
        "spool": {"path": args.spool_path},
    }
    if args.port:
        cli["sensor"] = [{"port": args.port, "model": args.sensor, "channel": "a"}]
    try:
        cfg = config.load(args.config, cli=cli)
    except ConfigError as exc:
        print(f"civicair bridge: {exc}", file=sys.stderr)
        if args.action == "doctor":
            print("[FAIL] config: see above\n0 passed, 1 failed")
        return 2
    if args.action == "doctor":
        from firmware_bridge import doctor

        logging.getLogger().setLevel(logging.WARNING)
        return doctor.run(cfg, sys.stdout)
    app.run(cfg)
    return 0


# -- ingest / api --------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.consumer import run
    from ingest.settings import IngestSettings

    _logging(args.verbose)
    run(IngestSettings())
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    _logging(args.verbose)
    uvicorn.run(create_app(ApiSettings()), host=args.host, port=args.port, log_level="warning",
                access_log=False, root_path=args.root_path, proxy_headers=True,
                forwarded_allow_ips=args.forwarded_allow_ips)
    return 0


def cmd_rollup(args: argparse.Namespace) -> int:
    from rollup import cli

    _logging(args.verbose)
    if args.action == "backfill":
        if not args.from_:
            print("civicair rollup backfill: give --from DATE (and --to DATE, default now)", file=sys.stderr)
            return 2
        return cli.cmd_backfill(args.from_, args.to)
    if args.from_ or args.to:
        print(f"civicair rollup {args.action}: --from/--to are for backfill only", file=sys.stderr)
        return 2
    return cli.cmd_init() if args.action == "init" else cli.cmd_run()


# -- stack ---------------------------------------------------------------------------------
def cmd_stack(args: argparse.Namespace) -> int:
    from civicair.stack import Stack

    return Stack(
        stations=args.simulate, state_dir=args.state_dir, window_s=args.window,
        api_port=args.api_port, mqtt_port=args.mqtt_port, influx_port=args.influx_port,
        metrics_port=args.metrics_port,
    ).run(duration=args.duration)


# -- archive ------------------------------------------------------------------------------
def cmd_archive_build(args: argparse.Namespace) -> int:
    from archive.build import ArchiveError, parse_day
    from archive.command import build
    from civicair.influx import InfluxError
    from civicair.settings import OpenDataSettings

    _logging(args.verbose)
    # SIGTERM (docker stop, the stack's Ctrl-C) unwinds like an error: the day being written
    # removes its temporary files instead of leaving them behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = OpenDataSettings(**({"archive_dir": args.archive_dir} if args.archive_dir else {}))
    try:
        days = [parse_day(d) for d in args.day or ()]
        start = parse_day(args.start) if args.start else None
        end = parse_day(args.end) if args.end else None
        report = build(settings, days=days, start=start, end=end, force=args.force)
    except ArchiveError as exc:
        print(f"civicair archive build: {exc}", file=sys.stderr)
        return 1
    except InfluxError as exc:
        print(f"civicair archive build: {exc}; the day being built was not written (no partial file)",
              file=sys.stderr)
        return 1
    print(f"archive {settings.archive_dir}/v1: {report.summary()}")
    if not (report.built or report.unchanged or report.empty or days or start):
        print("nothing to do: no complete UTC day is new or changed; today's partial day is built with "
              "--day YYYY-MM-DD (docs/archive.md)")
    return 0


def _add_archive_parser(sub) -> None:
    a = sub.add_parser("archive", help="the open-data archive: daily Parquet and CSV.gz files")
    asub = a.add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    s = asub.add_parser("build", help="write every complete UTC day not built yet, and rebuild days that "
                                      "changed (settings from CIVICAIR_* variables)")
    s.add_argument("--day", action="append", metavar="YYYY-MM-DD",
                   help="build this day (repeatable; today's day is built partial)")
    s.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day of a range")
    s.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day of a range (default yesterday)")
    s.add_argument("--force", action="store_true",
                   help="read the days again even if InfluxDB's fingerprint is unchanged (files are "
                        "still replaced only when their bytes differ)")
    s.add_argument("--archive-dir", help="default $CIVICAIR_ARCHIVE_DIR or ./archive")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_archive_build)


# -- dashboards ---------------------------------------------------------------------------
def cmd_dashboards_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dashboards import JSON_DIR, PROVISIONING_DIR
    from dashboards.build import build

    if args.rollup_rp and not args.out:
        print("civicair dashboards build: --rollup-rp needs --out DIR (the committed boards keep the "
              "default retention policy)", file=sys.stderr)
        return 2
    try:
        # --out: the boards only, for a Grafana provisioned from files.
        result = build(Path(args.out) if args.out else JSON_DIR, None if args.out else PROVISIONING_DIR,
                       check=args.check, rollup_rp=args.rollup_rp or "")
    except ValueError as exc:
        print(f"civicair dashboards build: {exc}", file=sys.stderr)
        return 2
    for path in result.written:
        print(f"wrote {path}")
    for path in result.stale:
        print(f"out of date: {path} (run: civicair dashboards build)", file=sys.stderr)
    print(f"{len(result.written)} written, {len(result.unchanged)} unchanged, "
          f"{len(result.stale)} out of date")
    return 1 if result.stale else 0


def cmd_dashboards_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from civicair.influx import Influx, InfluxError, InfluxSettings, InfluxUnavailable
    from dashboards import JSON_DIR, PROVISIONING_DIR, retention
    from dashboards.check import check, parse_overrides

    try:
        # The rollups' retention policy, unless --var rollup_rp=… says otherwise.
        overrides = {retention.VARIABLE: retention.checked(args.rollup_rp)} | parse_overrides(args.var or [])
        overrides[retention.VARIABLE] = retention.checked(overrides[retention.VARIABLE])
    except ValueError as exc:
        print(f"civicair dashboards check: {exc}", file=sys.stderr)
        return 2
    influx = None
    if not args.no_queries:
        # Credentials only from the environment: a command line ends up in shell history.
        influx = Influx(InfluxSettings(
            url=args.influx_url, database=args.db,
            token=os.environ.get("CIVICAIR_INFLUX_TOKEN") or None,
            username=os.environ.get("CIVICAIR_INFLUX_USERNAME") or None,
            password=os.environ.get("CIVICAIR_INFLUX_PASSWORD") or None,
        ))
        print(f"running every query against {args.influx_url} (database {args.db})")
        try:  # one line, rather than the same error for each of some 80 queries
            influx.query("SHOW MEASUREMENTS LIMIT 1")
        except InfluxUnavailable as exc:
            influx.close()
            print(f"civicair dashboards check: {exc}; give --influx-url, or --no-queries for the static "
                  "checks only", file=sys.stderr)
            return 1
        except InfluxError:
            pass  # refused (a missing database, credentials): every query's line says so below
    json_dir = Path(args.json_dir or JSON_DIR)
    try:
        report = check(influx, json_dir, Path(args.provisioning_dir or PROVISIONING_DIR), overrides=overrides)
    finally:
        if influx is not None:
            influx.close()
    print("\n".join(report.lines(verbose=args.verbose)))
    if influx is None:
        boards = len(list(json_dir.glob("*.json")))
        verdict = "no problem" if report.ok() else "see FAIL above"
        print(f"static checks of {boards} dashboards in {json_dir} (datasources, variables, layout, "
              f"switches): {verdict}; no query was run (--no-queries)")
    return 0 if report.ok(require_rows=args.require_rows) else 1


def cmd_dashboards_publish(args: argparse.Namespace) -> int:
    from dashboards.publish import InfluxTarget, PublishError, connect, publish

    try:
        api = connect()
        target = None if args.no_datasource else InfluxTarget.from_env()
        actions = publish(api, target, update_secrets=args.update_secrets, dry_run=args.dry_run,
                          rollup_rp=os.environ.get("CIVICAIR_ROLLUP_RP", ""))
    except PublishError as exc:
        print(f"civicair dashboards publish: {exc}", file=sys.stderr)
        return 2
    for a in actions:
        verb = f"would be {a.outcome}" if args.dry_run and a.outcome != "unchanged" else a.outcome
        print(f"{a.kind:10} {a.name}: {verb}" + (f" ({a.detail})" if a.detail else ""))
    return 0


# -- station ----------------------------------------------------------------------------------
def _passwd_file(args: argparse.Namespace) -> str:
    path = args.passwd_file or os.environ.get("CIVICAIR_PASSWD_FILE")
    if not path:
        raise SystemExit("civicair station: give --passwd-file or set CIVICAIR_PASSWD_FILE "
                         "(the broker's password_file)")
    return path


def _reload_hint() -> str:
    return ("reload the broker so it re-reads its password file: "
            "docker compose kill -s SIGHUP mosquitto (or: systemctl reload mosquitto)")


def cmd_station_add(args: argparse.Namespace) -> int:
    from civicair import stations

    try:
        new = stations.add_station(
            args.station, _passwd_file(args), name=args.name, lat=args.lat, lon=args.lon,
            registry=args.registry or os.environ.get("CIVICAIR_STATION_REGISTRY"),
            acl_file=args.acl_file or os.environ.get("CIVICAIR_ACL_FILE"), replace=args.replace,
        )
    except stations.StationError as exc:
        print(f"civicair station add: {exc}", file=sys.stderr)
        return 2
    acl = args.acl_file or os.environ.get("CIVICAIR_ACL_FILE")
    if acl and not stations.acl_lets_stations_read_confirmations(acl):
        print(f"civicair station add: warning: {acl} lacks '{stations.STATION_STORED_ACL}': the station "
              "cannot receive the ingest's stored confirmations, so its bridge deletes readings as soon "
              "as the broker has them (see docs/delivery.md)", file=sys.stderr)
    tls = not args.no_tls
    port = args.mqtt_port or (8883 if tls else 1883)
    toml = stations.bridge_snippet(new, args.mqtt_host, port, tls=tls, sensor=args.sensor,
                                   inline_password=args.inline_password)
    # Only the snippet on stdout, so `... > bridge.toml` works; the rest on stderr.
    print(f"station {new.record.id}: credentials {'replaced' if args.replace else 'created'}; "
          "the password below is shown once and stored nowhere", file=sys.stderr)
    if args.inline_password:
        print(toml, end="")
    else:
        print(f"==> {stations.BRIDGE_TOML} <==\n{toml}\n"
              f"==> {stations.BRIDGE_ENV} (chmod 600) <==\n{stations.bridge_env(new)}", end="")
    files = "--config bridge.toml" + ("" if args.inline_password else " --env bridge.env")
    print(f"the volunteer saves {'it' if args.inline_password else 'the two parts'} as "
          f"{'bridge.toml' if args.inline_password else 'bridge.toml and bridge.env'} on the Pi and runs: "
          f"sudo /opt/civicair/bin/civicair bridge install {files}", file=sys.stderr)
    print(_reload_hint(), file=sys.stderr)
    return 0


def cmd_station_list(args: argparse.Namespace) -> int:
    from civicair import stations

    try:
        rows = stations.list_stations(_passwd_file(args), registry=args.registry
                                      or os.environ.get("CIVICAIR_STATION_REGISTRY"))
    except stations.StationError as exc:
        print(f"civicair station list: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"id": r.record.id, "status": r.status, "name": r.record.name,
                           "lat": r.record.lat, "lon": r.record.lon, "added": r.record.added,
                           "revoked": r.record.revoked} for r in rows], indent=2))
        return 0
    print(f"{'station':24} {'status':14} {'added':21} name")
    for r in rows:
        print(f"{r.record.id:24} {r.status:14} {r.record.added or '-':21} {r.record.name or ''}")
    return 0


def cmd_station_revoke(args: argparse.Namespace) -> int:
    from civicair import stations

    found = stations.revoke_station(args.station, _passwd_file(args), registry=args.registry
                                    or os.environ.get("CIVICAIR_STATION_REGISTRY"))
    if not found:
        print(f"civicair station revoke: no station {args.station!r}", file=sys.stderr)
        return 1
    print(f"station {args.station}: credentials removed; its data stay published", file=sys.stderr)
    print(_reload_hint(), file=sys.stderr)
    return 0


def _add_dashboards_parser(sub) -> None:
    d = sub.add_parser("dashboards", help="Grafana dashboards: build, check, publish")
    dsub = d.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    s = dsub.add_parser("build", help="write dashboards/json/*.json and dashboards/provisioning/")
    s.add_argument("--check", action="store_true", help="write nothing; fail if a committed file is stale")
    s.add_argument("--out", metavar="DIR", help="write the boards' JSON here instead (no provisioning files)")
    s.add_argument("--rollup-rp", metavar="NAME",
                   help="retention policy of the rollups (CIVICAIR_ROLLUP_RP) the boards written to --out "
                        "read; default: the database's default policy")
    s.set_defaults(func=cmd_dashboards_build)
    s = dsub.add_parser("check", help="validate the JSON and run every panel query against InfluxDB")
    s.add_argument("--influx-url", default=os.environ.get("CIVICAIR_INFLUX_URL", "http://localhost:8086"),
                   help="default $CIVICAIR_INFLUX_URL or http://localhost:8086 (credentials: "
                        "CIVICAIR_INFLUX_TOKEN, or CIVICAIR_INFLUX_USERNAME and _PASSWORD)")
    s.add_argument("--db", default=os.environ.get("CIVICAIR_INFLUX_DB", "airquality"),
                   help="default $CIVICAIR_INFLUX_DB or airquality")
    s.add_argument("--var", action="append", metavar="NAME=VALUE", help="a dashboard variable's value")
    s.add_argument("--rollup-rp", metavar="NAME", default=os.environ.get("CIVICAIR_ROLLUP_RP", ""),
                   help="retention policy of the rollups ($rollup_rp; default $CIVICAIR_ROLLUP_RP or the "
                        "default policy)")
    s.add_argument("--require-rows", action="store_true", help="a query that returns no rows fails")
    s.add_argument("--no-queries", action="store_true", help="static checks only")
    s.add_argument("-v", "--verbose", action="store_true", help="print every expanded query")
    s.add_argument("--json-dir", help="dashboard JSON to check (default: the built dashboards/json)")
    s.add_argument("--provisioning-dir", help="provisioning files that define the datasource uids "
                                              "(default: dashboards/provisioning)")
    s.set_defaults(func=cmd_dashboards_check)
    s = dsub.add_parser("publish", help="create or update folder, datasource and dashboards on a Grafana "
                                        "(GRAFANA_URL, GRAFANA_TOKEN; the rollups' policy: "
                                        "CIVICAIR_ROLLUP_RP)")
    s.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    s.add_argument("--no-datasource", action="store_true", help="leave the datasource alone")
    s.add_argument("--update-secrets", action="store_true",
                   help="send the datasource credentials again (Grafana never returns them to compare)")
    s.set_defaults(func=cmd_dashboards_publish)


def _add_station_parser(sub) -> None:
    st = sub.add_parser("station", help="station MQTT credentials: add, list, revoke")
    ssub = st.add_subparsers(dest="station_command", required=True, metavar="ACTION")

    def files(s):
        s.add_argument("--passwd-file", help="the broker's password file (env CIVICAIR_PASSWD_FILE)")
        s.add_argument("--registry", help="station registry JSON (default: stations.json beside "
                                          "the password file; env CIVICAIR_STATION_REGISTRY)")

    s = ssub.add_parser("add", help="create a station's credentials and print its bridge config")
    s.add_argument("station", help="station id: lower-case letters, digits, '-'")
    s.add_argument("--name", help="public name shown on the dashboards")
    s.add_argument("--lat", type=float, help="latitude, degrees north")
    s.add_argument("--lon", type=float, help="longitude, degrees east")
    files(s)
    s.add_argument("--acl-file", help="check that this broker ACL lets the station publish "
                                      "(env CIVICAIR_ACL_FILE)")
    s.add_argument("--replace", action="store_true", help="issue a new password for an existing station")
    s.add_argument("--mqtt-host", default=os.environ.get("CIVICAIR_PUBLIC_MQTT_HOST", "mqtt.example.org"),
                   help="the broker as stations reach it (env CIVICAIR_PUBLIC_MQTT_HOST)")
    s.add_argument("--mqtt-port", type=int, help="default 8883, or 1883 with --no-tls")
    s.add_argument("--no-tls", action="store_true", help="plain MQTT (only on a trusted network)")
    s.add_argument("--sensor", default="pms5003", help="sensor model in the snippet")
    s.add_argument("--inline-password", action="store_true",
                   help="put the password in the TOML instead of a separate bridge.env")
    s.set_defaults(func=cmd_station_add)

    s = ssub.add_parser("list", help="every station, with its status")
    files(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_station_list)

    s = ssub.add_parser("revoke", help="remove a station's credentials (its data stay)")
    s.add_argument("station")
    files(s)
    s.set_defaults(func=cmd_station_revoke)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="civicair", description="Citizen air-quality monitoring: sensor bridge, ingest, open API, "
        "dashboards, rollups and the open-data archive. `civicair COMMAND --help` for each command.",
        epilog="Guides: README.md and docs/ (the API: docs/api.md; settings: CIVICAIR_* variables).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("stack", help="run the whole local stack with simulated stations")
    s.add_argument("--simulate", type=_number(int, minimum=0), default=3, metavar="N",
                   help="simulated stations (default 3)")
    s.add_argument("--duration", type=_number(float, above=0), metavar="S",
                   help="stop by itself after S seconds")
    s.add_argument("--window", type=_number(int, minimum=1), default=10, metavar="S",
                   help="bridge averaging window, s (default 10 for demos)")
    s.add_argument("--state-dir", default=os.environ.get("CIVICAIR_STATE_DIR", ".civicair/stack"),
                   help="where the broker, database, spools and logs live (default $CIVICAIR_STATE_DIR "
                        "or .civicair/stack)")
    for name, port, what in (("api", 8000, "the API"), ("mqtt", 1883, "Mosquitto"),
                             ("influx", 8086, "InfluxDB"), ("metrics", 9108, "the ingest's metrics")):
        s.add_argument(f"--{name}-port", type=_PORT, default=port, metavar="PORT",
                       help=f"{what} (default {port}; if taken, or 0, a free port, printed)")
    s.set_defaults(func=cmd_stack)

    s = sub.add_parser("simulate", help="a simulated sensor on a pseudo-terminal")
    # Every contract sensor, spelled out: building the parser imports nothing of the bridge.
    s.add_argument("--sensor", default="pms5003", choices=(
        "pms5003", "pms5003t", "pms7003", "pmsa003", "pms5003st", "sds011", "sps30"))
    s.add_argument("--rate", type=_number(float, above=0), default=1.0,
                   help="readings per second: frames streamed, or SPS30 readings ready (default 1)")
    s.add_argument("--link", help="also make this path a symlink to the pty")
    s.add_argument("--seed", help="seed for reproducible values")
    s.add_argument("--values", type=_json_object, help='fixed values as JSON, e.g. \'{"pm25_atm": 12}\'')
    s.add_argument("--garbage", type=_CHANCE, default=0.0, help="chance of random bytes before a frame")
    s.add_argument("--drop", type=_CHANCE, default=0.0, help="chance of losing one byte of a frame")
    s.add_argument("--stall", type=_CHANCE, default=0.0,
                   help="chance, per frame, of the output pausing for --stall-seconds")
    s.add_argument("--stall-seconds", type=_number(float, minimum=0), default=3.0,
                   help="length of a stall (default 3)")
    s.add_argument("--duration", type=_number(float, above=0), metavar="S", help="stop after S seconds")
    s.add_argument("--faults", type=_bits, default=0, metavar="BITS",
                   help="SPS30 only: device status register bits to report while measuring, e.g. "
                        "0x20 (laser failure), 0x10 (fan failure), 0x200000 (fan speed warning)")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("bridge", help="read a serial sensor and publish readings to MQTT",
                       description="Run the bridge, `civicair bridge doctor` to check the setup, or "
                                   "`sudo civicair bridge install --config FILE` to set it up as a service.")
    s.add_argument("action", nargs="?", choices=("run", "doctor", "install"), default="run",
                   help="run (default); doctor: check port, sensor, broker, clock and spool; install: "
                        "put the config in /etc/civicair, create the civicair user, install the systemd "
                        "unit, run doctor and start the service")
    s.add_argument("--env", dest="env_file", metavar="FILE",
                   help="install: the bridge.env lines with CIVICAIR_MQTT_PASSWORD (from `station add`)")
    s.add_argument("--no-start", action="store_true", help="install: write and check, do not start")
    s.add_argument("--skip-doctor", action="store_true", help="install: do not run doctor first")
    s.add_argument("--root", default="/", help="install: under this directory instead of / (packaging, "
                                                 "tests; no user is created and nothing is started)")
    s.add_argument("--config", help="TOML config file (environment variables override it)")
    s.add_argument("--station", help="station id (overrides the config's)")
    s.add_argument("--port", help="serial port of channel a (overrides the config's sensors)")
    s.add_argument("--sensor", default="pms5003", help="model on --port")
    s.add_argument("--mqtt-host", help="broker host (overrides the config's)")
    s.add_argument("--mqtt-port", type=_PORT, help="broker port (overrides the config's)")
    s.add_argument("--window", dest="window_s", type=int, help="averaging window, s (default 60)")
    s.add_argument("--warmup", dest="warmup_s", type=float, help="warm-up after power-on, s (default 30)")
    s.add_argument("--spool", dest="spool_path", help="spool database path")
    s.add_argument("--clock", choices=("auto", "trusted"), help="trust the system clock as synchronised")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_bridge)

    s = sub.add_parser("ingest", help="MQTT -> InfluxDB (settings from CIVICAIR_* variables)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("api", help="the open HTTP API (settings from CIVICAIR_* variables)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; "
                                                       "0.0.0.0 for every interface)")
    s.add_argument("--port", type=_PORT, default=8000, help="default 8000")
    s.add_argument("--root-path", default="", metavar="PREFIX",
                   help="behind a reverse proxy that serves the API under a path prefix (e.g. /air): "
                        "the links the API writes (SensorThings @iot.selfLink, @iot.nextLink) carry it")
    s.add_argument("--forwarded-allow-ips", metavar="ADDRESSES",
                   help="reverse proxies whose X-Forwarded-Proto and X-Forwarded-For are trusted, so links "
                        "say https (comma-separated, '*' for any; default $FORWARDED_ALLOW_IPS or 127.0.0.1)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_api)
    s = sub.add_parser("rollup", help="hourly/daily rollups: run the worker, backfill, init retention")
    s.add_argument("action", choices=("run", "backfill", "init"),
                   help="run: the worker; backfill: recompute --from/--to from raw; init: create the "
                        "retention policies (InfluxDB 1.x)")
    s.add_argument("--from", dest="from_", metavar="DATE", help="backfill: start (ISO 8601, UTC)")
    s.add_argument("--to", metavar="DATE", help="backfill: end, exclusive (default now)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_rollup)
    _add_dashboards_parser(sub)
    _add_station_parser(sub)
    _add_archive_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        # A CIVICAIR_* variable the settings refuse: say which and why, without a traceback.
        # (pydantic is a server dependency: the bridge never imports it.)
        pydantic = sys.modules.get("pydantic")
        if pydantic is None or not isinstance(exc, pydantic.ValidationError) \
                or not exc.title.endswith("Settings"):
            raise
        for error in exc.errors():
            name = "CIVICAIR_" + "_".join(str(part) for part in error["loc"]).upper()
            message, got = error["msg"].removeprefix("Value error, "), repr(error.get("input"))
            print(f"civicair {args.command}: {name}: {message}" + ("" if got in message else f" (got {got})"),
                  file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
