#!/usr/bin/env python
"""Ingest throughput on a real Mosquitto and a real InfluxDB, against two baselines.

    python bench/ingest_throughput.py            # 5 repetitions, medians (a few minutes)
    python bench/ingest_throughput.py --reps 3 --single 20000 --batch-messages 1000

Three figures, each the median of ``--reps`` repetitions. A repetition measures the
baseline and then the ingest, back to back, so that noise from other processes on the
machine hits both alike; the ratios are the medians of these paired ratios (the ratio
of the two medians is printed too):

ratio_single
    Single-reading messages at QoS 1: the ingest's end-to-end rate (first publish to the
    last reading accepted by InfluxDB) divided by the rate of a bare paho subscriber that
    only counts the same messages (first publish to the last message received). The
    publisher, the subscriber and the ingest are separate processes.
ratio_batch
    100-reading messages: the ingest's end-to-end rate in readings/s divided by the rate
    of bulk-posting the same readings, pre-encoded as line protocol, straight to InfluxDB
    in 5,000-line batches.
kernel_x
    The quality-flag and correction kernels alone (``ingest.clean``) on 1 M readings, in
    readings/s, divided by the better of the two ingest end-to-end rates.

Progress goes to stdout as it runs; the last line is exactly
``ratio_single=X ratio_batch=Y kernel_x=Z``. Figures and conditions: docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
STATIONS = 100
TOPIC_FILTER = "civicair/v1/+/readings"


def reading(station: str, seq: int, t0: int) -> dict:
    # The fields a PMS5003 station sends (cf_1 and atm masses, six counts, RH, temperature).
    return {"v": 1, "station": station, "sensor": "pms5003", "channel": "a", "ts": t0 + 60 * seq,
            "window": 60, "n": 26, "seq": seq, "boot": 1, "synced": True,
            "pm1_cf1": 3.0, "pm25_cf1": 10.0 + seq % 7, "pm10_cf1": 21.0, "pm1_atm": 2.0,
            "pm25_atm": 9.0 + seq % 5, "pm10_atm": 19.0, "n0_3": 1500.0, "n0_5": 420.0, "n1_0": 70.0,
            "n2_5": 9.0, "n5_0": 3.0, "n10_0": 1.0, "rh": 40.0 + seq % 30, "temp": 21.5}


def payloads(messages: int, per_message: int, t0: int) -> list[tuple[str, bytes]]:
    """``messages`` payloads of ``per_message`` readings, unique (station, ts) throughout."""
    import orjson

    out = []
    for i in range(messages):
        station = f"bench-{i % STATIONS}"
        base = (i // STATIONS) * per_message
        items = [reading(station, base + k, t0) for k in range(per_message)]
        body = orjson.dumps(items[0] if per_message == 1 else items)
        out.append((f"civicair/v1/{station}/readings", body))
    return out


# -- roles in child processes -------------------------------------------------------------

def role_publish(args: argparse.Namespace) -> None:
    """Build the payloads, say ``ready``, wait for a line on stdin, publish at QoS 1."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    msgs = payloads(args.messages, args.per_message, args.t0)
    acked = 0
    done = threading.Event()

    def on_publish(client, userdata, mid, rc, props):
        nonlocal acked
        acked += 1
        if acked == len(msgs):
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)  # the broker's CONNACK Receive Maximum caps it anyway
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect(args.host, args.port)
    c.loop_start()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    print(f"start {start!r}", flush=True)
    for topic, body in msgs:
        c.publish(topic, body, qos=1)
    done.wait(600)
    print(f"published {len(msgs)} in {time.time() - start:.3f} s", flush=True)
    c.disconnect()
    c.loop_stop()


def role_count(args: argparse.Namespace) -> None:
    """The bare subscriber: count messages; print the time the last one arrived."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    count = 0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client, userdata, msg):
        nonlocal count
        count += 1
        if count == args.messages:
            print(f"last {time.time()!r}", flush=True)
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-count-{os.getpid()}", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    topic = f"$share/{args.share_group}/{TOPIC_FILTER}" if args.share_group else TOPIC_FILTER
    c.on_connect = lambda client, u, f, rc, p: client.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: subscribed.set()
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = args.receive_maximum  # the same window the ingest asks for
    c.connect(args.host, args.port, properties=props)
    c.loop_start()
    subscribed.wait(30)
    print("ready", flush=True)
    done.wait(600)
    c.disconnect()
    c.loop_stop()


# -- the conductor ------------------------------------------------------------------------

def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def spawn_role(role: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--role", role, *extra], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)


def expect(proc: subprocess.Popen, prefix: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited ({proc.poll()}) before saying {prefix!r}")
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise RuntimeError(f"child never said {prefix!r}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from civicair.services import InfluxDB, Mosquitto

        self.args = args
        self.workdir = workdir
        self.broker = Mosquitto(workdir / "mosquitto", extra_config=args.broker_config.replace(";", "\n"))
        self.influxdb = InfluxDB(workdir / "influxdb")
        self.run_id = 0
        self.last_cpu = float("nan")  # CPU seconds per reading of the last consumer measured
        per_station = max(args.single, args.batch_messages * 100) // STATIONS + 1
        self.span_s = (per_station * 60 // 86400 + 1) * 86400
    def __enter__(self) -> Bench:
        self.broker.start()
        self.influxdb.start()
        from civicair.influx import Influx, InfluxSettings

        self.influx = Influx(InfluxSettings(url=self.influxdb.url, database="bench"))
        self.influx.create_database()
        return self

    def __exit__(self, *exc) -> None:
        self.influx.close()
        self.broker.stop()
        self.influxdb.stop()

    def next_t0(self) -> int:
        # Every run writes new points (its own time range: no run overwrites another's),
        # close together, so that all runs land in the same few shards.
        self.run_id += 1
        return T0 + self.run_id * self.span_s

    def publisher(self, messages: int, per_message: int, t0: int) -> subprocess.Popen:
        pub = spawn_role("publish", "--host", self.broker.host, "--port", str(self.broker.port),
                         "--messages", str(messages), "--per-message", str(per_message), "--t0", str(t0))
        expect(pub, "ready")
        return pub

    def go(self, pub: subprocess.Popen) -> float:
        pub.stdin.write("go\n")
        pub.stdin.flush()
        return float(expect(pub, "start "))

    # each measurement returns readings/s
    def bare(self, messages: int) -> float:
        counter = spawn_role("count", "--host", self.broker.host, "--port", str(self.broker.port),
                             "--messages", str(messages), "--receive-maximum", str(self.args.receive_maximum),
                             "--share-group", self.args.share_group)
        try:
            expect(counter, "ready")
            cpu0 = _cpu_seconds(counter.pid)
            pub = self.publisher(messages, 1, self.next_t0())
            start = self.go(pub)
            last = float(expect(counter, "last "))
            pub.wait(60)
            self.last_cpu = (_cpu_seconds(counter.pid) - cpu0) / messages
            return messages / (last - start)
        finally:
            stop(counter)

    def ingest(self, messages: int, per_message: int) -> float:
        from ingest.metrics import parse

        self.run_id += 1
        metrics_port = _free_port()
        env = {**os.environ,
               "CIVICAIR_MQTT_HOST": self.broker.host, "CIVICAIR_MQTT_PORT": str(self.broker.port),
               "CIVICAIR_MQTT_CLIENT_ID": f"bench-ingest-{self.run_id}", "CIVICAIR_SESSION_EXPIRY_S": "0",
               "CIVICAIR_SHARE_GROUP": self.args.share_group,
               "CIVICAIR_INFLUX_URL": self.influxdb.url, "CIVICAIR_INFLUX_DB": "bench",
               "CIVICAIR_DEADLETTER_PATH": str(self.workdir / "dead.jsonl"),
               "CIVICAIR_METRICS_HOST": "127.0.0.1", "CIVICAIR_METRICS_PORT": str(metrics_port),
               "CIVICAIR_BATCH_SIZE": str(self.args.batch_size),
               "CIVICAIR_BATCH_AGE_S": str(self.args.batch_age),
               "CIVICAIR_RECEIVE_MAXIMUM": str(self.args.receive_maximum)}
        log = open(self.workdir / f"ingest-{self.run_id}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "ingest"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        log.close()

        def metrics() -> dict[str, float]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                    return parse(r.read().decode())
            except OSError:
                return {}

        spy = None
        try:
            deadline = time.monotonic() + 60
            while metrics().get("civicair_ingest_mqtt_connected") != 1:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ingest did not start; see {log.name}")
                time.sleep(0.1)
            time.sleep(0.3)  # the SUBSCRIBE goes out right after the CONNACK
            cpu0 = _cpu_seconds(proc.pid)  # start-up (imports) is not the ingest's per-reading cost
            pub = self.publisher(messages, per_message, self.next_t0())
            if self.args.py_spy:  # a profile of the ingest while it runs (collapsed stacks)
                out = f"{self.args.py_spy}-{per_message}-{self.run_id}.txt"
                spy = subprocess.Popen(["py-spy", "record", "--pid", str(proc.pid), "--threads", "--idle",
                                        "--format", "raw", "--rate", "200", "--output", out],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            start = self.go(pub)
            want = messages * per_message
            deadline = time.monotonic() + 600
            while (m := metrics()).get("civicair_ingest_written_readings_total", 0) < want:
                if time.monotonic() > deadline or proc.poll() is not None:
                    wrote = m.get("civicair_ingest_written_readings_total")
                    raise RuntimeError(f"ingest wrote {wrote} of {want}; see {log.name}")
                time.sleep(0.1)
            pub.wait(60)
            self.last_cpu = (_cpu_seconds(proc.pid) - cpu0) / want
            return want / (m["civicair_ingest_last_write_timestamp_seconds"] - start)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            stop(proc)

    def bulk(self, messages: int, per_message: int) -> float:
        """Bulk-post the same readings, pre-encoded as the ingest encodes them, in 5,000 lines."""
        from ingest.clean import Cleaner
        from ingest.columns import decode
        from ingest.lineprotocol import encode

        batch, dead = decode(payloads(messages, per_message, self.next_t0()))
        assert not dead
        lines = encode(Cleaner().clean(batch)).splitlines(keepends=True)
        chunks = [b"".join(lines[i:i + 5000]) for i in range(0, len(lines), 5000)]
        start = time.perf_counter()
        for chunk in chunks:
            self.influx.write(chunk)
        return len(lines) / (time.perf_counter() - start)


def kernel_rate(readings: int, reps: int) -> tuple[float, str]:
    """The quality flags and corrections alone on a synthetic batch of ``readings``."""
    import numpy as np

    from ingest import clean as clean_module
    from ingest.columns import MEASURED, Batch

    rng = np.random.default_rng(4)
    stations = 1000
    idx = np.arange(readings)
    values = {name: rng.gamma(2.0, 6.0, readings) for name in MEASURED if name.startswith(("pm", "n"))}
    values["rh"] = rng.uniform(10, 99, readings)
    values["temp"] = rng.normal(15, 8, readings)
    sensors = np.array(["pms5003", "pms7003", "sds011", "sps30"], dtype=object)

    def batch() -> Batch:
        return Batch(
            station=np.array([f"k-{i}" for i in range(stations)], dtype=object)[idx % stations],
            sensor=sensors[(idx % stations) % len(sensors)],
            channel=np.where((idx // stations) % 2 == 0, "a", "b").astype(object),
            ints={"ts": T0 + 60 * (idx // (2 * stations)), "window": np.full(readings, 60),
                  "n": np.full(readings, 26), "seq": idx // stations, "boot": np.ones(readings, np.int64)},
            synced=np.ones(readings, dtype=bool), values={k: v.copy() for k, v in values.items()})

    cleaner_cls = getattr(clean_module, "Cleaner", None)
    what = "ingest.clean.Cleaner.clean" if cleaner_cls else "ingest.clean.clean"
    rates = []
    for _ in range(reps):
        b = batch()
        fn = cleaner_cls().clean if cleaner_cls else clean_module.clean
        start = time.perf_counter()
        fn(b, now=float(T0 + 10**9)) if cleaner_cls else fn(b)
        rates.append(readings / (time.perf_counter() - start))
    return statistics.median(rates), what


def _paired_median(label: str, ingest: list[float], baseline: list[float]) -> float:
    if not ingest or not baseline:
        return float("nan")
    ratios = [a / b for a, b in zip(ingest, baseline, strict=True)]
    say(f"{label} ratios per repetition: " + ", ".join(f"{r:.2f}" for r in ratios))
    return statistics.median(ratios)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to tell cost from contention."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _free_port() -> int:
    from civicair.services import free_port

    return free_port()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--role", choices=("publish", "count"), help=argparse.SUPPRESS)
    p.add_argument("--host", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--messages", type=int, help=argparse.SUPPRESS)
    p.add_argument("--per-message", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--t0", type=int, default=T0, help=argparse.SUPPRESS)
    p.add_argument("--reps", type=int, default=5, help="repetitions per figure (default 5)")
    p.add_argument("--single", type=int, default=30_000, help="single-reading messages per run (30000)")
    p.add_argument("--batch-messages", type=int, default=1_000, help="100-reading messages per run (1000)")
    p.add_argument("--kernel-readings", type=int, default=1_000_000)
    p.add_argument("--batch-size", type=int, default=5000, help="ingest CIVICAIR_BATCH_SIZE (readings)")
    p.add_argument("--batch-age", type=float, default=0.2, help="ingest CIVICAIR_BATCH_AGE_S")
    p.add_argument("--receive-maximum", type=int, default=10000, help="ingest CIVICAIR_RECEIVE_MAXIMUM")
    p.add_argument("--share-group", default="",
                   help="CIVICAIR_SHARE_GROUP for the ingest (and the same $share for the bare subscriber)")
    p.add_argument("--broker-config", default="", help="extra mosquitto.conf lines, ';'-separated")
    p.add_argument("--py-spy", metavar="PREFIX", help="profile each ingest run with py-spy into PREFIX-*.txt")
    p.add_argument("--only", choices=("single", "batch", "kernel"), action="append",
                   help="run only these parts (repeatable)")
    args = p.parse_args()
    if args.role == "publish":
        role_publish(args)
        return 0
    if args.role == "count":
        role_count(args)
        return 0

    parts = set(args.only or ("single", "batch", "kernel"))
    load = os.getloadavg()
    say(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"{args.reps} repetitions; ingest batch_size={args.batch_size} batch_age_s={args.batch_age} "
        f"receive_maximum={args.receive_maximum} share_group={args.share_group!r}; "
        f"broker: services.Mosquitto defaults + {args.broker_config or '(nothing)'}")
    results: dict[str, list[float]] = {k: [] for k in ("bare", "ingest1", "bulk", "ingest100")}
    with tempfile.TemporaryDirectory(prefix="civicair-bench-") as tmp, Bench(args, Path(tmp)) as bench:
        for rep in range(1, args.reps + 1):
            if "single" in parts:
                results["bare"].append(bench.bare(args.single))
                say(f"rep {rep}: bare subscriber      {results['bare'][-1]:>10,.0f} msg/s "
                    f"({args.single} single-reading messages; {bench.last_cpu * 1e6:.0f} µs CPU each)")
                results["ingest1"].append(bench.ingest(args.single, 1))
                say(f"rep {rep}: ingest, 1/message    {results['ingest1'][-1]:>10,.0f} readings/s "
                    f"({bench.last_cpu * 1e6:.0f} µs CPU each)")
            if "batch" in parts:
                results["bulk"].append(bench.bulk(args.batch_messages, 100))
                say(f"rep {rep}: bulk line protocol   {results['bulk'][-1]:>10,.0f} points/s "
                    f"({args.batch_messages * 100} readings, 5000-line posts)")
                results["ingest100"].append(bench.ingest(args.batch_messages, 100))
                say(f"rep {rep}: ingest, 100/message  {results['ingest100'][-1]:>10,.0f} readings/s "
                    f"({bench.last_cpu * 1e6:.0f} µs CPU each)")
    med = {k: statistics.median(v) if v else float("nan") for k, v in results.items()}
    spread = {k: (min(v), max(v)) if v else (float("nan"),) * 2 for k, v in results.items()}
    for k, label in (("bare", "bare subscriber msg/s"), ("ingest1", "ingest 1/message readings/s"),
                     ("bulk", "bulk line protocol points/s"), ("ingest100", "ingest 100/message readings/s")):
        if results[k]:
            say(f"median {label:<32} {med[k]:>10,.0f}  (min {spread[k][0]:,.0f}, max {spread[k][1]:,.0f})")
    kernel_x = float("nan")
    if "kernel" in parts:
        rate, what = kernel_rate(args.kernel_readings, max(3, args.reps))
        end_to_end = max(x for x in (med["ingest1"], med["ingest100"]) if x == x) \
            if results["ingest1"] or results["ingest100"] else float("nan")
        kernel_x = rate / end_to_end
        say(f"kernels ({what}) on {args.kernel_readings:,} readings: {rate:,.0f} readings/s")
    load = os.getloadavg()
    say(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    # Each repetition measures the baseline and the ingest back to back, under the same load:
    # the median of these paired ratios is steadier than the ratio of the two medians.
    ratio_single = _paired_median("single", results["ingest1"], results["bare"])
    ratio_batch = _paired_median("batch", results["ingest100"], results["bulk"])
    say(f"ratio of medians (for comparison): single {med['ingest1'] / med['bare']:.2f}, "
        f"batch {med['ingest100'] / med['bulk']:.2f}")
    print(f"ratio_single={ratio_single:.2f} ratio_batch={ratio_batch:.2f} kernel_x={kernel_x:.0f}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
