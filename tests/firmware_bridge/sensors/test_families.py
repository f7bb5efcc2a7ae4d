"""What every sensor family promises, run over every family: the protocol's names, the
parser's properties (never raises, buffer capped, recovers after garbage, frames joined and
split anywhere), and the shared resync reader. One parametrised copy, not one per family."""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicair.schema import sensors as schema_sensors
from firmware_bridge.sensors import FAMILIES, MODULES, family, plantower, sds011, sps30
from firmware_bridge.sensors.base import CommandReply, Measurement, SensorFamily
from firmware_bridge.sensors.framing import FrameReader
from tests.firmware_bridge.feeding import chunked
from tests.firmware_bridge.sensors import frames_plantower as pms
from tests.firmware_bridge.sensors import frames_sds011 as sds
from tests.firmware_bridge.sensors import frames_sps30 as sps


@dataclass(frozen=True)
class Case:
    module: ModuleType
    model: str
    baud: int
    golden: bytes
    golden_values: dict
    #: Frames of the family, each decoding to one event on its own.
    frames: tuple[bytes, ...]
    #: Put between garbage and the golden frame in the recovery property; see each case.
    pad: bytes
    #: The start of a frame that never completes, sent again and again.
    head_fragment: bytes
    #: Seed and longest gap of the "random bytes between frames" stream.
    seed: int
    gap: int
    foreign_model: str

    @property
    def golden_event(self) -> Measurement:
        return Measurement(self.model, self.golden_values, 0)

    def one(self, frame: bytes):
        (event,) = self.module.Parser(self.model).feed(frame)
        return event


CASES = [
    # Plantower: garbage may hold a header and a known length, and a false frame that
    # runs into GOLDEN may then swallow its header; padding longer than any frame ends
    # whatever partial frame the garbage began.
    pytest.param(Case(plantower, "pms5003", 9600, pms.GOLDEN, pms.GOLDEN_VALUES,
                      (pms.GOLDEN, pms.ACK_PASSIVE, plantower.encode_frame("pms5003", {"pm25_atm": 42})),
                      bytes(plantower.MAX_BUFFER), b"\x42\x4d\x00", seed=7, gap=40,
                      foreign_model="sds011"), id="plantower"),
    # SDS011: no padding needed; see test_sds011.test_recovery_property_precondition.
    pytest.param(Case(sds011, "sds011", 9600, sds.GOLDEN, sds.GOLDEN_VALUES,
                      (sds.GOLDEN, sds.QUERY_EXAMPLE, sds.REPLY_FIRMWARE, sds.REPLY_SLEEP_SET),
                      b"", b"\xaa\xc0\x00", seed=11, gap=30, foreign_model="pms5003"), id="sds011"),
    # SPS30: no padding needed. 0x7E never occurs inside a frame (stuffing), so a false
    # frame that begins in the garbage ends at GOLDEN's opening flag at the latest, and
    # the parser never consumes a closing flag (it may open the next frame). GOLDEN's
    # content between its own flags therefore always reaches the decoder intact; what
    # follows it cannot matter. An overlong false frame is dropped only up to a flag it
    # has not seen, so never GOLDEN's.
    pytest.param(Case(sps30, "sps30", 115200, sps.GOLDEN, sps.GOLDEN_VALUES,
                      (sps.GOLDEN, sps.STUFFED, sps.READ_EMPTY, sps.NOT_ALLOWED, sps.VERSION_2_1,
                       sps.STATUS_CLEAR),
                      b"", b"\x7e\x00\x03", seed=13, gap=30, foreign_model="sds011"), id="sps30"),
]


# -- the family protocol ---------------------------------------------------------------------------
def test_every_family_module_is_covered_here():
    assert {p.values[0].module for p in CASES} == set(MODULES)


def test_the_bridge_speaks_every_model_of_the_schema_in_its_family():
    assert sorted(FAMILIES) == sorted(schema_sensors.MODELS)
    for model, module in FAMILIES.items():
        assert module.__name__.rsplit(".", 1)[1] == schema_sensors.FAMILY_OF[model]


@pytest.mark.parametrize("case", CASES)
def test_family_module_implements_the_protocol(case):
    module = case.module
    assert isinstance(module, SensorFamily)
    assert module.BAUD_RATE == case.baud
    for model in module.MODELS:
        assert family(model) is module and FAMILIES[model] is module
    # The verbs mean the same in every family; every name the bridge sends exists.
    for name in ("sleep", "wake", "passive_read", *module.INIT_SEQUENCE):
        assert isinstance(module.COMMANDS[name], bytes), name
    if module.POLL is not None:
        name, period = module.POLL
        assert name in module.COMMANDS and 0 < period <= 1.0
    assert module.reconcile(case.golden_event) is None  # a measurement never asks for a write
    assert case.one(module.encode_frame(case.model, case.golden_values)) == case.golden_event


def test_an_unknown_model_is_refused_with_the_supported_ones():
    with pytest.raises(ValueError, match="unsupported sensor 'sds021'; supported: pms5003"):
        family("sds021")


@pytest.mark.parametrize("case", CASES)
def test_parser_refuses_a_foreign_model(case):
    with pytest.raises(ValueError):
        case.module.Parser(case.foreign_model)


# -- parser properties ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=800), chunk=st.integers(1, 64))
def test_parser_never_raises_on_arbitrary_bytes(case, stream, chunk):
    parser = case.module.Parser(case.model)
    events = chunked(parser, stream, chunk)
    assert len(parser._buf) <= case.module.MAX_BUFFER
    assert all(isinstance(e, Measurement | CommandReply) for e in events)


@pytest.mark.parametrize("case", CASES)
@settings(max_examples=300, deadline=None)
@given(before=st.binary(max_size=700), after=st.binary(max_size=300), chunk=st.integers(1, 64))
def test_valid_frame_after_arbitrary_garbage_is_recovered(case, before, after, chunk):
    parser = case.module.Parser(case.model)
    events = chunked(parser, before + case.pad + case.golden + after, chunk)
    assert case.golden_event in events


@pytest.mark.parametrize("case", CASES)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), chunk=st.integers(1, 64))
def test_joined_frames_split_anywhere_decode_one_event_each(case, data, chunk):
    frames = data.draw(st.lists(st.sampled_from(case.frames), min_size=1, max_size=20))
    parser = case.module.Parser(case.model)
    assert chunked(parser, b"".join(frames), chunk) == [case.one(f) for f in frames]
    assert parser.stats.skipped_bytes == 0 and not parser.stats.errors


@pytest.mark.parametrize("case", CASES)
def test_concatenated_and_arbitrarily_split_frames_all_come_out(case):
    frames = list(case.frames) * 20
    stream = b"".join(frames)
    rng = random.Random(case.seed)
    parser = case.module.Parser(case.model)
    events, i = [], 0
    while i < len(stream):
        n = rng.randint(1, 40)
        events += parser.feed(stream[i : i + n])
        i += n
    assert events == [case.one(f) for f in frames]
    assert parser.stats.skipped_bytes == 0 and not parser.stats.errors


@pytest.mark.parametrize("case", CASES)
def test_random_bytes_between_frames_are_skipped(case):
    rng = random.Random(case.seed)
    stream = b""
    for _ in range(50):
        stream += rng.randbytes(rng.randint(0, case.gap)) + case.golden
    parser = case.module.Parser(case.model)
    measurements = [e for e in parser.feed(stream) if isinstance(e, Measurement)]
    # Random bytes may by chance hold a header; with these seeds they hold no valid
    # frame, so exactly the 50 real frames come out.
    assert measurements == [case.golden_event] * 50
    assert parser.stats.skipped_bytes > 0


@pytest.mark.parametrize("case", CASES)
def test_buffer_stays_capped_on_endless_head_fragments(case):
    parser = case.module.Parser(case.model)
    for _ in range(1000):
        parser.feed(case.head_fragment)
        assert len(parser._buf) <= case.module.MAX_BUFFER
    assert parser.feed(case.golden)[-1:] == [case.golden_event]


# -- the shared resync reader --------------------------------------------------------------------------
def reader(**kw) -> FrameReader:
    """Frames ``AB n <n bytes>`` (n at most 4) whose last byte is 0x00: the smallest family."""
    def length(prefix: bytes) -> int | str:
        return 2 + prefix[1] if prefix[1] <= 4 else "bad length"

    def check(frame: bytes) -> str | None:
        return None if frame[-1] == 0 else "bad end"

    return FrameReader((b"\xab",), prefix=2, length=length, check=check, max_buffer=16, **kw)


def test_reader_skips_noise_and_returns_whole_frames():
    r = reader()
    assert r.feed(b"\x01\x02\xab\x02\x07\x00\xab") == [b"\xab\x02\x07\x00"]
    assert r.skipped_bytes == 2 and len(r) == 1  # AB waits for its length byte
    assert r.feed(b"\x00") == [b"\xab\x00"]


def test_reader_refusal_costs_one_byte_and_counts_the_reason():
    r = reader()
    # A bad length and a bad end each cost one byte; the search goes on from the next.
    assert r.feed(b"\xab\x09" + b"\xab\x01\x05" + b"\xab\x00") == [b"\xab\x00"]
    assert r.errors == {"bad length": 1, "bad end": 1}
    assert r.skipped_bytes == 5


def test_reader_keeps_a_partial_head_and_shares_an_error_counter():
    from collections import Counter

    errors: Counter[str] = Counter()
    r = FrameReader((b"\x42\x4d",), length=4, max_buffer=8, errors=errors)
    assert r.feed(b"\x00\x00\x42") == [] and len(r) == 1
    assert r.feed(b"\x4d\x01\x02") == [b"\x42\x4d\x01\x02"]
    r = FrameReader((b"\x42\x4d",), length=2, check=lambda f: "nope", max_buffer=8, errors=errors)
    r.feed(b"\x42\x4d")
    assert errors == {"nope": 1}


def test_reader_buffer_is_capped_on_an_endless_partial_frame():
    r = FrameReader((b"\xab",), length=100, max_buffer=16)
    for _ in range(10):
        r.feed(b"\xab" + bytes(10))
        assert len(r) <= 16


@pytest.mark.parametrize("heads", [(), (b"",), (b"\xaa", b"\xaa\xc0")],
                         ids=["no head", "empty head", "heads of two lengths"])
def test_reader_refuses_heads_it_cannot_search_for(heads):
    with pytest.raises(ValueError, match="heads"):
        FrameReader(heads, length=2, max_buffer=8)
