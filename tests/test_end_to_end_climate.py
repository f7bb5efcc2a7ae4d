"""Companions end to end: simulated sensors on pseudo-terminals, bridge processes each
reading a simulated companion on a simulated I²C bus, the real broker, the real ingest,
the real InfluxDB.

A SDS011 beside a BME280 is corrected by κ-Köhler (Nilson et al. 2022), a plain PMS5003
beside an SHT31 by US EPA (Barkjohn et al. 2021); the stored ``pm25`` equals the value
computed here, by hand, from the stored raw values and the companion's stored ``rh``
(formulas: ingest/corrections.py, docs/quality.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from civicair.influx import Influx, InfluxSettings, series
from firmware_bridge.simulator import PtySimulator
from tests.conftest import DATABASE, wait_until
from tests.procs import bridge_args, server_env, spawn, stop

WINDOW = 2
SDS011 = {"pm25_atm": 23.4, "pm10_atm": 31.0}
PMS5003 = {"pm1_cf1": 20, "pm25_cf1": 41, "pm10_cf1": 52, "pm1_atm": 18, "pm25_atm": 33, "pm10_atm": 40,
           "n0_3": 3000, "n0_5": 900, "n1_0": 140, "n2_5": 12, "n5_0": 4, "n10_0": 1}
STATIONS = {  # station: (sensor, its values, [[climate]] kind, the model it reports)
    "kohler-1": ("sds011", SDS011, "bme280", "bme280"),
    "epa-1": ("pms5003", PMS5003, "sht3x", "sht31"),
}


def nilson_by_hand(pm25_atm: float, rh: float) -> float:
    """Nilson et al. (2022) Model 2: PM / (1 + 0.24 / (100/RH − 1)), RH limited to 30..70 %."""
    rh = min(max(rh, 30.0), 70.0)
    return max(pm25_atm / (1 + 0.24 / (100 / rh - 1)), 0.0)


def barkjohn_by_hand(pm25_cf1: float, rh: float) -> float:
    """Barkjohn et al. (2021): 0.524 · PA_cf1 − 0.0862 · RH + 5.75 (PA_cf1 < 570)."""
    return max(0.524 * pm25_cf1 - 0.0862 * rh + 5.75, 0.0)


@pytest.mark.slow  # ~7 s: two bridges with companions, broker, ingest, InfluxDB
def test_companions_bring_each_station_its_humidity_correction(tmp_path: Path, mosquitto, influxdb):
    log = tmp_path / "processes.log"
    env = server_env(mosquitto, influxdb, tmp_path)
    sims, procs = [], [spawn(["ingest"], env, log)]
    try:
        for station, (sensor, values, kind, model) in STATIONS.items():
            sim = PtySimulator(sensor, rate_hz=5, values=values, link=tmp_path / f"tty-{station}")
            sim.start()
            sims.append(sim)
            config = tmp_path / f"{station}.toml"
            config.write_text(f'[[climate]]\nkind = "{kind}"\nmodel = "{model}"\nsimulate = true\ninterval = 1\n')
            procs.append(spawn([*bridge_args(station, sim.link, tmp_path / f"{station}.sqlite3", WINDOW),
                                "--sensor", sensor, "--config", str(config)], env, log))

        with Influx(InfluxSettings(url=influxdb.url, database=DATABASE)) as db:
            def rows() -> dict[str, list[dict]] | None:
                (result,) = db.query('SELECT "pm25_atm", "pm25_cf1", "rh", "climate", "pm25", "pm25_method", '
                                     '"n" FROM "pm" GROUP BY "station"')
                out = {s["tags"]["station"]: [dict(zip(s["columns"], v, strict=True)) for v in s["values"]]
                       for s in series(result)}
                with_rh = {k: [r for r in v if r["climate"]] for k, v in out.items()}
                return out if all(len(with_rh.get(s, [])) >= 3 for s in STATIONS) else None

            stored = wait_until(rows, timeout=45, message="3 readings with a companion's rh per station")
    finally:
        for proc in procs[1:]:
            stop(proc)
        stop(procs[0])
        for sim in sims:
            sim.close()
        print(log.read_text()[-3000:])

    for station, (sensor, values, _kind, model) in STATIONS.items():
        measured = [r for r in stored[station] if r["n"]]
        companion = [r for r in measured if r["climate"]]
        # Every measured window but possibly the first (the companion's first read) has it.
        assert len(companion) >= len(measured) - 1, measured
        for r in companion:
            assert r["climate"] == model and 55 <= r["rh"] <= 90
            assert r["pm25_atm"] == pytest.approx(values["pm25_atm"], abs=0.05)
            if sensor == "sds011":
                assert r["pm25_method"] == "nilson_2022_kohler"
                by_hand = nilson_by_hand(r["pm25_atm"], r["rh"])
            else:
                assert r["pm25_method"] == "epa_barkjohn_2021"
                assert r["pm25_cf1"] == values["pm25_cf1"]
                by_hand = barkjohn_by_hand(r["pm25_cf1"], r["rh"])
            assert r["pm25"] == pytest.approx(by_hand, abs=0.005 + 1e-9), r  # stored to 0.01 µg/m³
