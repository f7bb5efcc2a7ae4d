"""rollup.compute.points and lines on hand-made query results; the init command's
retention statements; settings that refuse bad values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from civicair.schema import qc
from rollup.cli import retention_statements
from rollup.compute import lines, points
from rollup.settings import RollupSettings


def _result(columns, rows_by_tags):
    return {"series": [{"name": "pm", "tags": tags, "columns": columns, "values": rows}
                       for tags, rows in rows_by_tags]}


def _stats(station, t, **values):
    cols = ["time", *(f"{p}_{s}" for p in ("pm25", "rh") for s in ("mean", "min", "max", "count"))]
    row = [t, *(values.get(c) for c in cols[1:])]
    return _result(cols, [({"station": station}, [row])])


def test_points_from_results_zero_clean_counts_and_flag_summary():
    clean = {"series": []}  # every reading of the hour is flagged
    every = _stats("a", 3600, pm25_mean=5.5, pm25_min=5.0, pm25_max=6.0, pm25_count=2)
    readings = _result(["time", "readings", "window"], [({"station": "a", "channel": "a"}, [[3600, 2, 120]]),
                                                        ({"station": "a", "channel": "b"}, [[3600, 1, 0]])])
    flagged = _result(["time", "qc"], [({"station": "a"}, [[3600, int(qc.Flag.SPIKE)],
                                                            [3660, int(qc.Flag.SPIKE)]])])
    found = points([clean, every, readings, {}, flagged], "1h")
    assert found == {("a", 3600): {"pm25_mean_all": 5.5, "pm25_min_all": 5.0, "pm25_max_all": 6.0,
                                   "pm25_count_all": 2, "pm25_count": 0, "readings_a": 2, "clean_a": 0,
                                   "window_a": 120, "readings_b": 1, "clean_b": 0, "flag_spike": 2, "qc_or": 4}}
    assert lines("pm_1h", found) == (b"pm_1h,station=a clean_a=0i,clean_b=0i,flag_spike=2i,pm25_count=0i,pm25_count_all=2i,"
                                     b"pm25_max_all=6.0,pm25_mean_all=5.5,pm25_min_all=5.0,qc_or=4i,"
                                     b"readings_a=2i,readings_b=1i,window_a=120i 3600\n")


def test_retention_statements_for_a_raw_retention():
    s = RollupSettings(raw_retention="400d", rollup_rp="forever")
    rows = [["autogen", "0s", "168h0m0s", 1, True]]
    assert retention_statements(s, rows) == [
        'CREATE RETENTION POLICY "forever" ON "airquality" DURATION INF REPLICATION 1',
        'ALTER RETENTION POLICY "autogen" ON "airquality" DURATION 400d DEFAULT']
    assert retention_statements(RollupSettings(), rows) == []  # keep forever: nothing to change


def test_a_raw_retention_needs_a_policy_for_the_rollups():
    with pytest.raises(ValueError, match="CIVICAIR_ROLLUP_RP"):
        retention_statements(RollupSettings(raw_retention="30d"), [["autogen", "0s", "168h0m0s", 1, True]])


@pytest.mark.parametrize("bad", [{"raw_retention": "1 year"}, {"rollup_rp": 'x"; DROP'},
                                 {"rollup_interval_s": 0}])
def test_settings_refuse_bad_values(bad):
    with pytest.raises(ValidationError):
        RollupSettings(**bad)
