"""``civicair`` command line. Each subcommand imports only what it needs, so
``civicair bridge`` and ``civicair simulate`` run with the ``bridge`` extra alone."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT,
                        datefmt="%Y-%m-%dT%H:%M:%S")
    # One line per state change: the HTTP client's per-request lines are noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)


# -- simulate -------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    from firmware_bridge.simulator import PtySimulator

    values = json.loads(args.values) if args.values else None
    sim = PtySimulator(args.sensor, rate_hz=args.rate, values=values, seed=args.seed,
                       link=args.link, garbage=args.garbage)
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
        return 2
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
                access_log=False)
    return 0


# -- stack ---------------------------------------------------------------------------------
def cmd_stack(args: argparse.Namespace) -> int:
    from civicair.stack import Stack

    return Stack(
        stations=args.simulate, state_dir=args.state_dir, window_s=args.window,
        api_port=args.api_port, mqtt_port=args.mqtt_port, influx_port=args.influx_port,
    ).run(duration=args.duration)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="civicair", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("stack", help="run the whole local stack with simulated stations")
    s.add_argument("--simulate", type=int, default=3, metavar="N", help="simulated stations (default 3)")
    s.add_argument("--duration", type=float, help="stop by itself after S seconds")
    s.add_argument("--window", type=int, default=10, help="bridge averaging window, s (default 10 for demos)")
    s.add_argument("--state-dir", default=os.environ.get("CIVICAIR_STATE_DIR", ".civicair/stack"),
                   help="where the broker, database, spools and logs live (default .civicair/stack)")
    s.add_argument("--api-port", type=int, default=8000)
    s.add_argument("--mqtt-port", type=int, default=1883)
    s.add_argument("--influx-port", type=int, default=8086)
    s.set_defaults(func=cmd_stack)

    s = sub.add_parser("simulate", help="a simulated sensor on a pseudo-terminal")
    s.add_argument("--sensor", default="pms5003")
    s.add_argument("--rate", type=float, default=1.0, help="frames per second (default 1)")
    s.add_argument("--link", help="also make this path a symlink to the pty")
    s.add_argument("--seed", help="seed for reproducible values")
    s.add_argument("--values", help='fixed values as JSON, e.g. \'{"pm25_atm": 12}\'')
    s.add_argument("--garbage", type=float, default=0.0, help="chance of random bytes before a frame")
    s.add_argument("--duration", type=float, help="stop after S seconds")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("bridge", help="read a serial sensor and publish readings to MQTT")
    s.add_argument("--config", help="TOML config file (environment variables override it)")
    s.add_argument("--station")
    s.add_argument("--port", help="serial port of channel a (overrides the config's sensors)")
    s.add_argument("--sensor", default="pms5003", help="model on --port")
    s.add_argument("--mqtt-host")
    s.add_argument("--mqtt-port", type=int)
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
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_api)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
