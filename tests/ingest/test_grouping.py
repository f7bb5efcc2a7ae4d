"""Grouping readings by their string keys (ingest/grouping.py)."""

from __future__ import annotations

import numpy as np

from ingest.grouping import factorize


def obj(*values: str) -> np.ndarray:
    return np.array(values, dtype=object)


def test_factorize_groups_rows_by_every_column_exactly():
    station = obj("s1", "s2", "s1", "s1", "s2")
    channel = obj("a", "a", "b", "a", "a")
    groups = factorize(station, channel)
    assert len(groups) == 3
    c = groups.codes.tolist()
    assert c[0] == c[3] and c[1] == c[4] and len({c[0], c[1], c[2]}) == 3
    assert sorted(groups.first.tolist()) == [0, 1, 2]
    assert (groups.codes[groups.first] == np.arange(3)).all()


def test_factorize_of_nothing():
    groups = factorize(obj())
    assert groups.codes.shape == (0,) and len(groups) == 0


def test_factorize_with_many_distinct_keys_sorts_instead_of_a_dense_table():
    station = np.array([f"s{i}" for i in range(300)], dtype=object)
    sensor = np.array([f"m{i}" for i in range(300)], dtype=object)
    groups = factorize(station, sensor)  # 300 × 300 = 90 000 codes: too many for a table
    assert len(groups) == 300
    assert (station[groups.first][groups.codes] == station).all()


def test_factorize_agrees_with_python_grouping_even_when_codes_would_overflow():
    rng = np.random.default_rng(3)
    n = 70_000  # four columns of 70 000 distinct values: 70 000⁴ > 2⁶³
    columns = [np.array([f"{c}{v}" for v in rng.permutation(n)], dtype=object) for c in "wxyz"]
    columns[0][::7] = "w-same"  # and some repeated keys
    columns[1][::7] = "x-same"
    columns[2][::7] = "y-same"
    columns[3][::7] = "z-same"
    groups = factorize(*columns)
    keys = list(zip(*(c.tolist() for c in columns), strict=True))
    assert len(groups) == len(set(keys))
    for g, i in enumerate(groups.first.tolist()):
        assert groups.codes[i] == g
    same = groups.codes[::7]
    assert (same == same[0]).all() and (groups.codes[1::7] != same[0]).all()
