"""CPU cost of decoding one companion reading, against decoding one PMS5003 frame.

The bridge parses a PM frame every second; a companion is read every 2 s or more. This
puts each codec's decode (bytes in, sample out: the BME280's integer compensation, the
Sensirion CRCs) beside the Plantower parser's cost for one 32-byte frame, measured in
the same run. Bus time (the conversions' waits, 10-76 ms, spent sleeping) is not CPU.

    python bench/climate_codecs.py [--n 20000]

One line per codec: ``<kind> us_per_read=X ratio_to_pms5003_frame=Y``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_bridge.climate import bme280, htu21d, sht3x, sht4x  # noqa: E402
from firmware_bridge.climate.i2c import run_plan  # noqa: E402
from firmware_bridge.climate.simulated import (  # noqa: E402
    FakeClock,
    SimBme280,
    SimHtu21d,
    SimSht3x,
    SimSht4x,
    SimulatedBus,
)
from firmware_bridge.sensors import plantower  # noqa: E402


def per_call_us(fn, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    n = ap.parse_args().n

    frame = plantower.encode_frame("pms5003", {"pm25_atm": 12, "pm10_atm": 20, "n0_3": 900})
    parser = plantower.Parser("pms5003")
    baseline = per_call_us(lambda: parser.feed(frame), n)
    print(f"pms5003_frame us_per_frame={baseline:.2f}")

    clock = FakeClock()
    parts = {"bme280": (0x76, SimBme280()), "sht3x": (0x44, SimSht3x()), "sht4x": (0x45, SimSht4x()),
             "htu21d": (0x40, SimHtu21d())}
    bus = SimulatedBus({addr: dev for addr, dev in parts.values()}, clock=clock)
    for kind, module in (("bme280", bme280), ("sht3x", sht3x), ("sht4x", sht4x), ("htu21d", htu21d)):
        address = parts[kind][0]
        codec = module.Codec(kind)
        codec.accept_init(run_plan(bus, address, codec.init_plan(), clock.sleep))
        replies = run_plan(bus, address, codec.measure_plan(), clock.sleep)  # real bytes, decoded below
        cost = per_call_us(lambda codec=codec, replies=replies: codec.decode(replies), n)
        print(f"{kind} us_per_read={cost:.2f} ratio_to_pms5003_frame={cost / baseline:.2f}")


if __name__ == "__main__":
    main()
