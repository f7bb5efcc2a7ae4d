"""Wire contract v1, stored confirmations: the topic, the payload and its version rule."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicair.schema import contract
from civicair.schema.errors import ContractError

GOOD = {"v": 1, "station": "lab-1", "stored": [{"channel": "a", "boot": 3, "seq": [[0, 41], [43, 50]]},
                                               {"channel": "b", "boot": 3, "seq": [[7, 7]]}]}


def test_stored_topic_is_below_the_station():
    assert contract.stored_topic("lab-1") == "civicair/v1/lab-1/stored"
    assert contract.topic_kind("civicair/v1/lab-1/stored") == contract.STORED
    with pytest.raises(ContractError, match="must match"):
        contract.stored_topic("Lab 1")


def test_good_confirmation_decodes_to_ranges_per_channel_and_boot():
    got = contract.decode_stored(json.dumps(GOOD).encode(), "lab-1")
    assert got == {("a", 3): [(0, 41), (43, 50)], ("b", 3): [(7, 7)]}


def test_encode_then_decode_round_trips():
    ranges = {("a", 1): [(0, 9)], ("a", 2): [(0, 0), (2, 5)], ("b", 2): [(4, 4)]}
    payload = contract.encode_stored("lab-1", ranges)
    assert contract.decode_stored(payload, "lab-1") == ranges


@given(st.dictionaries(
    st.tuples(st.sampled_from(contract.CHANNELS), st.integers(0, 2**63 - 1)),
    st.lists(st.integers(0, 10_000), min_size=1, unique=True).map(sorted), max_size=4))
def test_any_coalesced_ranges_round_trip(seqs):
    ranges = {}
    for key, values in seqs.items():  # coalesce by hand: a run of consecutive values is one range
        spans: list[tuple[int, int]] = []
        for s in values:
            if spans and s == spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], s)
            else:
                spans.append((s, s))
        ranges[key] = spans
    assert contract.decode_stored(contract.encode_stored("lab-1", ranges)) == ranges


def test_unknown_keys_are_ignored_within_v1():
    doc = {**GOOD, "batch": 17, "stored": [{**GOOD["stored"][0], "note": "later addition"}]}
    assert contract.decode_stored(json.dumps(doc).encode()) == {("a", 3): [(0, 41), (43, 50)]}


def _with(**change):
    return json.dumps({**GOOD, **change}).encode()


def _entry(**change):
    return json.dumps({**GOOD, "stored": [{**GOOD["stored"][0], **change}]}).encode()


@pytest.mark.parametrize("payload, reason", [
    (b"{", "not valid JSON"),
    (b"\xff", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (_with(v=2), "unsupported stored confirmation version v=2"),
    (_with(v="1"), "'v' must be an integer"),
    (_with(v=True), "'v' must be an integer"),
    (_with(station="Lab 1"), "must match"),
    (_with(station="lab-2"), "differs from topic station"),
    (_with(stored={"a": [0, 1]}), "'stored' must be a list"),
    (_with(stored=[[0, 1]]), "entry must be an object"),
    (_entry(channel="c"), "channel must be 'a' or 'b'"),
    (_entry(boot=-1), "boot must be an integer >= 0"),
    (_entry(boot=1.0), "boot must be an integer >= 0"),
    (_entry(seq=[]), "non-empty list"),
    (_entry(seq=[[1, 2, 3]]), "must be [first, last]"),
    (_entry(seq=[[1, "2"]]), "must be [first, last]"),
    (_entry(seq=[[-1, 2]]), "must be [first, last]"),
    (_entry(seq=[[0, 2**63]]), "must be [first, last]"),
    (_entry(seq=[[5, 2]]), "runs backwards"),
    (_entry(seq=[[0, 5], [4, 9]]), "overlaps or touches"),
    (_entry(seq=[[0, 5], [6, 9]]), "overlaps or touches"),
    (_entry(seq=[[6, 9], [0, 2]]), "overlaps or touches"),
    (json.dumps({**GOOD, "stored": GOOD["stored"] * 2}).encode(), "appears twice"),
    (_entry(seq=[[2 * i, 2 * i] for i in range(contract.MAX_STORED_RANGES + 1)]), "more than"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_confirmation_is_refused_with_a_reason(payload, reason):
    with pytest.raises(ContractError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        contract.decode_stored(payload, "lab-1")
