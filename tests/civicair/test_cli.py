"""``civicair`` arguments and settings: a bad value gets a sentence naming it, never a traceback."""

from __future__ import annotations

import pytest

from civicair import cli


@pytest.mark.parametrize(("argv", "message"), [
    (["simulate", "--values", "{bad"], "argument --values: not JSON"),
    (["simulate", "--values", "[1]"], "argument --values: must be a JSON object"),
    (["simulate", "--faults", "zz"], "argument --faults: not an integer (e.g. 0x20 or 32): 'zz'"),
    (["simulate", "--rate", "0"], "argument --rate: must be more than 0, got 0"),
    (["simulate", "--drop", "2"], "argument --drop: must be at most 1, got 2"),
    (["stack", "--simulate", "-1"], "argument --simulate: must be at least 0, got -1"),
    (["stack", "--window", "0"], "argument --window: must be at least 1, got 0"),
    (["stack", "--api-port", "70000"], "argument --api-port: must be at most 65535, got 70000"),
    (["stack", "--duration", "x"], "argument --duration: not a number: 'x'"),
])
def test_bad_arguments_are_refused_with_a_sentence(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_good_arguments_still_parse():
    args = cli.parser().parse_args(["simulate", "--values", '{"pm25_atm": 12}', "--faults", "0x20", "--rate", "0.5"])
    assert (args.values, args.faults, args.rate) == ({"pm25_atm": 12}, 0x20, 0.5)
    args = cli.parser().parse_args(["stack", "--api-port", "0", "--simulate", "0"])
    assert (args.api_port, args.simulate, args.metrics_port) == (0, 0, 9108)


@pytest.mark.parametrize(("argv", "variable", "value", "message"), [
    (["rollup", "init"], "CIVICAIR_RAW_RETENTION", "bogus", "retention duration must be INF or a number"),
    (["rollup", "init"], "CIVICAIR_ROLLUP_RP", 'bad"rp', "letters, digits"),
    (["archive", "build"], "CIVICAIR_ARCHIVE_FINAL_AFTER_DAYS", "x", "valid integer"),
])
def test_a_refused_setting_names_its_variable_without_a_traceback(argv, variable, value, message, monkeypatch,
                                                                  capsys):
    monkeypatch.setenv(variable, value)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"civicair {argv[0]}: {variable}: " in err and message in err, err
    assert "Traceback" not in err and "pydantic" not in err


def test_help_describes_the_command_in_whole_sentences(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "Each subcommand imports only what it needs, so\n" not in out  # the docstring cut mid-sentence
    assert "COMMAND --help" in out and "docs/api.md" in out


def test_dashboards_check_says_once_that_influxdb_is_unreachable(capsys):
    from civicair.services import free_port

    assert cli.main(["dashboards", "check", "--influx-url", f"http://127.0.0.1:{free_port()}"]) == 1
    out, err = capsys.readouterr()
    assert "InfluxDB unreachable" in err and "--no-queries" in err
    assert "FAIL" not in out  # not the same error for each of some 80 queries


def test_dashboards_check_without_queries_says_what_it_checked(capsys):
    assert cli.main(["dashboards", "check", "--no-queries"]) == 0
    out = capsys.readouterr().out
    assert "static checks of 3 dashboards" in out and "no problem" in out and "no query was run" in out


def test_api_behind_a_reverse_proxy_writes_public_links(influxdb):
    """docs/sensorthings.md: behind a proxy serving https://<host>/air/, `civicair api --root-path /air
    --forwarded-allow-ips …` makes @iot.selfLink and the service root's urls point there."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from civicair.services import free_port

    port = free_port()
    env = {**os.environ, "CIVICAIR_INFLUX_URL": influxdb.url, "CIVICAIR_INFLUX_DB": "airquality"}
    proc = subprocess.Popen([sys.executable, "-m", "civicair", "api", "--port", str(port), "--root-path", "/air",
                             "--forwarded-allow-ips", "*"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/sta/v1.1", timeout=5,
                              headers={"Host": "air.example.org", "X-Forwarded-Proto": "https"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
                time.sleep(0.2)
        assert r.status_code == 200, r.text
        urls = {e["name"]: e["url"] for e in r.json()["value"]}
        assert urls["Things"] == "https://air.example.org/air/sta/v1.1/Things"
    finally:
        proc.terminate()
        proc.wait(10)
