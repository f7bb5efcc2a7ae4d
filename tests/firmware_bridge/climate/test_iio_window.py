"""IIO sysfs reader on a fake tree (DHT22 EIO included) and the window accumulator."""

from __future__ import annotations

import pytest

from firmware_bridge.climate import iio
from firmware_bridge.climate.base import ClimateSample
from firmware_bridge.climate.simulated import FlakyReader, write_iio_device
from firmware_bridge.climate.window import CompanionAccumulator


def test_processed_channels_are_milli_units(tmp_path):
    write_iio_device(tmp_path, 0, "dht11", in_temp_input=21500, in_humidityrelative_input=48300)
    sample = iio.IioReader("iio:device0", model="dht22", root=tmp_path).read()
    assert sample == ClimateSample(model="dht22", temp=21.5, rh=48.3)


def test_raw_channels_use_offset_and_scale(tmp_path):
    # (raw + offset) * scale in milli units: (1234 + 100) * 10 = 13340 m°C; 45000 * 1 m%.
    write_iio_device(tmp_path, 3, "bme280", in_temp_raw=1234, in_temp_offset=100, in_temp_scale=10,
                     in_humidityrelative_raw=45000)
    sample = iio.IioReader("bme280", root=tmp_path).read()
    assert sample is not None and sample.temp == pytest.approx(13.34) and sample.rh == pytest.approx(45.0)


def test_a_device_is_found_by_name_or_number(tmp_path):
    write_iio_device(tmp_path, 0, "ads1015", in_voltage0_raw=1)
    write_iio_device(tmp_path, 1, "dht11", in_temp_input=20000, in_humidityrelative_input=50000)
    write_iio_device(tmp_path, 12, "tmp117", in_temp_raw=2000, in_temp_scale=7.8125)
    assert iio.find_devices(tmp_path) == [("iio:device1", "dht11"), ("iio:device12", "tmp117")]
    assert iio.find_devices(tmp_path, require_humidity=True) == [("iio:device1", "dht11")]
    temp_only = iio.IioReader("tmp117", root=tmp_path).read()
    assert temp_only is not None and temp_only.rh is None and temp_only.temp == pytest.approx(15.625)
    assert iio.resolve("dht11", tmp_path) == tmp_path / "iio:device1"
    assert iio.resolve("iio:device1", tmp_path) == tmp_path / "iio:device1"
    with pytest.raises(FileNotFoundError, match=r"iio:device1 \(dht11\)"):
        iio.resolve("sht4x", tmp_path)


def test_a_missing_device_is_counted_never_raised(tmp_path):
    reader = iio.IioReader("dht11", root=tmp_path / "nowhere")
    assert reader.read() is None and reader.read() is None
    assert reader.errors == {"missing device": 2} and "no IIO device 'dht11'" in reader.last_error


def test_a_device_that_goes_away_is_looked_up_again_under_its_new_number(tmp_path):
    """The dht11 module reloaded (or the overlay re-probed): its sysfs directory vanishes
    and the device comes back as another iio:deviceN. The reader finds it by name again."""
    import shutil

    write_iio_device(tmp_path, 0, "dht11", in_temp_input=20000, in_humidityrelative_input=50000)
    reader = iio.IioReader("dht11", model="dht22", root=tmp_path, retries=0)
    assert reader.read() is not None
    shutil.rmtree(tmp_path / "iio:device0")
    assert reader.read() is None and reader.errors == {"missing device": 1}
    write_iio_device(tmp_path, 3, "dht11", in_temp_input=18000, in_humidityrelative_input=61000)
    sample = reader.read()
    assert sample is not None and (sample.rh, sample.temp) == (61.0, 18.0)


def test_impossible_humidity_is_a_counted_bad_value(tmp_path):
    write_iio_device(tmp_path, 0, "dht11", in_temp_input=20000, in_humidityrelative_input=150000)
    reader = iio.IioReader("dht11", root=tmp_path, retries=0)
    assert reader.read() is None and reader.errors == {"bad value": 1}


def test_dht22_failing_with_eio_half_the_time_still_yields_a_mean_and_counted_errors(tmp_path):
    write_iio_device(tmp_path, 0, "dht11", in_temp_input=19800, in_humidityrelative_input=63400)
    flaky = FlakyReader([True, False])  # every other sensor read fails with EIO
    reader = iio.IioReader("dht11", model="dht22", root=tmp_path, read_text=flaky, retries=0,
                           sleep=lambda s: None)
    window = CompanionAccumulator("dht22")
    for i in range(30):  # one read every 2 s over a 60 s window
        window.add(1_700_000_040 + 2 * i, reader.read())
    summary = window.window(1_700_000_040, 1_700_000_100)
    assert summary.rh == 63.4 and summary.temp == 19.8
    assert (summary.n, summary.errors, summary.source) == (15, 15, "dht22")
    assert reader.errors == {"EIO": 15} and flaky.failures == 15


def test_dht22_retries_turn_each_eio_into_a_later_success(tmp_path):
    write_iio_device(tmp_path, 0, "dht11", in_temp_input=19800, in_humidityrelative_input=63400)
    slept: list[float] = []
    reader = iio.IioReader("dht11", root=tmp_path, read_text=FlakyReader([True, False]), sleep=slept.append)
    samples = [reader.read() for _ in range(5)]
    assert all(s is not None and s.rh == 63.4 for s in samples)
    assert reader.errors == {"EIO": 5} and reader.retried == 5 and slept == [iio.RETRY_S] * 5


def test_an_always_failing_dht_gives_up_after_its_retries(tmp_path):
    write_iio_device(tmp_path, 0, "dht11", in_temp_input=19800, in_humidityrelative_input=63400)
    reader = iio.IioReader("dht11", root=tmp_path, read_text=FlakyReader([True]), sleep=lambda s: None)
    assert reader.read() is None
    assert reader.errors == {"EIO": iio.RETRIES + 1}


def sample(rh, temp):
    return ClimateSample(model="sht3x", temp=temp, rh=rh)


def test_window_means_only_the_readings_inside_start_inclusive_end_exclusive():
    acc = CompanionAccumulator("sht3x")
    acc.add(59.9, sample(99.0, 99.0))  # the previous window
    acc.add(60.0, sample(40.0, 20.0))
    acc.add(90.0, None)
    acc.add(100.0, sample(50.0, 21.0))
    acc.add(120.0, sample(99.0, 99.0))  # the next window
    w = acc.window(60, 120)
    assert (w.rh, w.temp, w.n, w.errors, w.source) == (45.0, 20.5, 2, 1, "sht3x")
    assert acc.window(60, 120) == w  # asking does not consume (two PM channels share it)


def test_window_without_readings_has_no_values():
    acc = CompanionAccumulator("bme280")
    acc.add(10.0, None)
    w = acc.window(0, 60)
    assert (w.rh, w.temp, w.n, w.errors) == (None, None, 0, 1)


def test_window_forgets_old_readings_and_refuses_bad_bounds():
    acc = CompanionAccumulator("bme280", keep_s=100)
    acc.add(0.0, sample(10.0, 10.0))
    acc.add(200.0, sample(20.0, 20.0))
    assert acc.window(0, 60).n == 0
    with pytest.raises(ValueError):
        acc.window(60, 60)
    with pytest.raises(ValueError):
        acc.add(float("nan"), None)
