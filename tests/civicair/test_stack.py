"""``civicair stack``: the whole local stack, as a new user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from civicair.services import free_port


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.mark.slow  # ~65 s: the stack runs for its full minute
def test_stack_runs_three_stations_for_a_minute_and_leaves_nothing_behind(tmp_path):
    state = tmp_path / "stack"
    proc = subprocess.Popen(
        [sys.executable, "-m", "civicair", "stack", "--simulate", "3", "--duration", "60",
         "--state-dir", str(state), "--api-port", str(free_port()),
         "--mqtt-port", str(free_port()), "--influx-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines, api, seen, archived, thing_1 = [], None, {}, None, None
    rollup_metrics, passes = None, 0.0
    for line in proc.stdout:  # ends when the stack exits
        lines.append(line)
        if api is None and (m := re.search(r"API up: (http://\S+?)/v1/stations", line)):
            api = m.group(1)
        if m := re.search(r"rollup worker started: (http://\S+/metrics)", line):
            rollup_metrics = m.group(1)
        if rollup_metrics and "stored:" in line and not passes:
            try:
                text = httpx.get(rollup_metrics, timeout=5).text
            except httpx.HTTPError:  # not serving yet: the next line asks again
                text = ""
            found = re.search(r"^civicair_rollup_cycles_total (\S+)$", text, re.M)
            passes = float(found.group(1)) if found else 0.0
        if api and archived is None and "archive: today's partial day built" in line:
            archived = httpx.get(f"{api}/v1/archive", timeout=5).json()["results"]
        if api and "stored:" in line and thing_1 is None:  # SensorThings ids a user can type
            ds = httpx.get(f"{api}/sta/v1.1/Things(1)/Datastreams(1)", timeout=5)
            if ds.status_code == 200:
                thing_1 = (httpx.get(f"{api}/sta/v1.1/Things(1)/name/$value", timeout=5).text, ds.json()["name"])
        if api and "stored:" in line and len(seen) < 3:
            stations = httpx.get(f"{api}/v1/stations", timeout=5).json()["results"]
            for s in stations:
                r = httpx.get(f"{api}/v1/stations/{s['id']}/measurements", timeout=5).json()
                measured = [m for m in r["results"] if m["n"] > 0]
                if measured:
                    seen[s["id"]] = measured[-1]
    output = "".join(lines)
    assert proc.wait(30) == 0, output
    assert sorted(seen) == ["sim-1", "sim-2", "sim-3"], output
    for reading in seen.values():
        assert reading["pm25_atm"] >= 0 and reading["n"] > 0
    # The SDS011 and the plain PMS5003 get their humidity from simulated companions.
    assert (seen["sim-2"].get("climate"), seen["sim-2"]["pm25_method"]) == ("bme280", "nilson_2022_kohler")
    assert (seen["sim-3"].get("climate"), seen["sim-3"]["pm25_method"]) == ("sht31", "epa_barkjohn_2021")
    assert "simulated sds011 with a simulated BME280" in output
    assert re.search(r"stored: \d+ readings from 3 of 3 stations", output)
    assert "nothing left running" in output
    assert thing_1 == ("Simulated station 1", "PM2.5"), output
    # ... and the rollup worker persisted them (docs/sensorthings.md "Ids"), in one pass or several
    assigned = re.findall(r"assigned SensorThings Thing ids to \d+ stations \(([^)]*)\)",
                          (state / "logs" / "rollup.log").read_text())
    assert sorted(", ".join(assigned).split(", ")) == ["sim-1=1", "sim-2=2", "sim-3=3"], assigned
    assert passes > 0, output  # its /metrics, on the port the stack printed
    # Today's partial day of the open-data archive, listed by the API at once.
    assert archived and archived[0]["day"] == time.strftime("%Y-%m-%d", time.gmtime()), output
    assert archived[0]["complete"] is False and archived[0]["rows"] > 0
    assert (state / "archive" / "v1" / "datapackage.json").is_file()
    time.sleep(0.5)
    assert _processes_mentioning(str(state)) == []
    assert os.path.exists(state / "logs" / "ingest.log")


@pytest.mark.slow  # ~10 s: starts the whole stack
def test_ctrl_c_stops_every_process_the_stack_started(tmp_path):
    import signal

    state = tmp_path / "stack"
    proc = subprocess.Popen(
        [sys.executable, "-m", "civicair", "stack", "--simulate", "2", "--window", "2",
         "--state-dir", str(state), "--api-port", str(free_port()),
         "--mqtt-port", str(free_port()), "--influx-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # If no reading is stored within 120 s (a machine under heavy load), Ctrl-C anyway: the
    # test then fails on what the stack printed instead of hanging until pytest's timeout.
    watchdog = threading.Timer(120, proc.send_signal, (signal.SIGINT,))
    watchdog.start()
    lines, stored = [], False
    try:
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"stored: [1-9]\d* readings", line):
                stored = True
                proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
                break
        lines += proc.stdout.readlines()
    finally:
        watchdog.cancel()
    output = "".join(lines)
    assert stored, output
    assert proc.wait(30) == 0, output
    assert "nothing left running" in output
    time.sleep(0.5)
    assert _processes_mentioning(str(state)) == []


@pytest.mark.slow  # ~10 s: starts the whole stack
def test_port_0_and_a_taken_metrics_port_get_free_ports_that_are_printed(tmp_path):
    """``--api-port 0`` means "any free port" (it used to wait 30 s for port 0, then fail), and a
    taken 9108 (another stack's ingest) moves the ingest's /metrics to a free port the stack prints,
    instead of turning it off while the user reads the other process's numbers."""
    import signal
    import socket

    state = tmp_path / "stack"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        busy = taken.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "civicair", "stack", "--simulate", "1", "--state-dir", str(state),
             "--api-port", "0", "--mqtt-port", "0", "--influx-port", "0", "--metrics-port", str(busy)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        watchdog = threading.Timer(120, proc.send_signal, (signal.SIGINT,))
        watchdog.start()
        lines, metrics, health, api = [], None, None, None
        try:
            for line in proc.stdout:
                lines.append(line)
                if m := re.search(r"metrics: (http://127\.0\.0\.1:(\d+))/metrics", line):
                    metrics = m.group(1)
                    assert int(m.group(2)) != busy, line
                if m := re.search(r"API up: (http://\S+?)/v1/stations", line):
                    api = httpx.get(f"{m.group(1)}/v1/health", timeout=5).status_code
                    health = httpx.get(f"{metrics}/health", timeout=5).status_code
                    proc.send_signal(signal.SIGINT)
                    break
            lines += proc.stdout.readlines()
        finally:
            watchdog.cancel()
    output = "".join(lines)
    assert proc.wait(30) == 0, output
    assert (api, health) == (200, 200), output
    assert "metrics server not started" not in (state / "logs" / "ingest.log").read_text()
    time.sleep(0.5)
    assert _processes_mentioning(str(state)) == []
