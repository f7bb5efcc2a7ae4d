"""The one resync loop: a byte stream in, whole frames that start with a known head out.

Owns the search for a head, the wait for the rest of a frame, the one-byte step past a
frame that fails its checks, and the buffer cap. The Plantower and SDS011 parsers read
what their sensors send with it, and their simulated sensors read what the host sends
with it, so the four agree on what "resync on the header" means. (The SPS30's SHDLC
stream is delimited by flags, not headed: :class:`firmware_bridge.sensors.sps30.Deframer`
is its one shared reader.)

A family describes its frames with three things: the heads a frame may start with, how
long a frame is once its first ``prefix`` bytes are known (or why there is no frame
here), and what is wrong with a whole frame (None when nothing is). Sans-IO: no serial,
clock or network here; it never raises on input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

#: ``length(prefix) -> int | str``: a frame's total length, or the reason there is no
#: frame at this head ("" for noise that is not worth counting as an error).
Length = Callable[[bytes], int | str]
#: ``check(frame) -> str | None``: the reason a whole frame is refused, None when it is good.
Check = Callable[[bytes], str | None]


def _fixed(n: int) -> Length:
    return lambda prefix: n


def _accept(frame: bytes) -> str | None:
    return None


class FrameReader:
    """``feed(bytes) -> list[bytes]``: the complete, checked frames the bytes finish.

    Bytes before a head are skipped; a trailing part of a head is kept (it may be
    completed by the next read). A frame whose length or check fails costs one byte:
    the search for the next head starts one byte further, so a real frame that began
    inside a false one is still found. At most ``max_buffer`` bytes wait unparsed.
    ``skipped_bytes`` and ``errors`` (by reason; pass a parser's own counter to share
    it) count what was dropped.
    """

    def __init__(self, heads: tuple[bytes, ...], *, length: Length | int, prefix: int = 0,
                 check: Check = _accept, max_buffer: int, errors: Counter[str] | None = None) -> None:
        if not heads or len({len(h) for h in heads}) != 1 or not heads[0]:
            raise ValueError(f"heads must be non-empty byte strings of one length, got {heads!r}")
        self.heads = heads
        self._head_len = len(heads[0])
        self._partials = {h[:i] for h in heads for i in range(1, self._head_len)}
        self._length: Length = _fixed(length) if isinstance(length, int) else length
        self._prefix = max(prefix, self._head_len)
        self._check = check
        self.max_buffer = max_buffer
        self._buf = bytearray()
        self.skipped_bytes = 0
        self.errors: Counter[str] = Counter() if errors is None else errors

    def _find_head(self) -> int:
        found = [i for i in (self._buf.find(h) for h in self.heads) if i >= 0]
        return min(found) if found else -1

    def _partial_tail(self) -> int:
        """How many trailing bytes could be the start of a head."""
        buf = self._buf
        for n in range(min(self._head_len - 1, len(buf)), 0, -1):
            if bytes(buf[-n:]) in self._partials:
                return n
        return 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        buf = self._buf
        frames: list[bytes] = []
        while True:
            start = self._find_head()
            if start < 0:
                self.skip(len(buf) - self._partial_tail())
                break
            self.skip(start)
            if len(buf) < self._prefix:
                break
            length = self._length(bytes(buf[: self._prefix]))
            if isinstance(length, str):
                self._refuse(length)
                continue
            if len(buf) < length:
                break
            frame = bytes(buf[:length])
            reason = self._check(frame)
            if reason is not None:
                self._refuse(reason)
                continue
            del buf[:length]
            frames.append(frame)
        if len(buf) > self.max_buffer:  # only a partial frame longer than any real one gets here
            self.skip(len(buf) - self.max_buffer)
        return frames

    def _refuse(self, reason: str) -> None:
        if reason:
            self.errors[reason] += 1
        self.skip(1)

    def skip(self, count: int) -> None:
        if count > 0:
            del self._buf[:count]
            self.skipped_bytes += count

    def __len__(self) -> int:
        """Bytes waiting for the rest of their frame."""
        return len(self._buf)
