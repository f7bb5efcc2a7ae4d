"""Feed a sans-IO parser three ways (STYLE habit 6): whole, byte by byte, garbage around.

Each family chooses its own garbage (the noise that most looks like its frames):
``FEEDS = feeds(before, after)`` gives the parametrize mark, and a test asks
``feed.garbage`` when skipped bytes are expected.
"""

from __future__ import annotations

import pytest


def feed_whole(parser, data):
    return parser.feed(data)


def feed_bytewise(parser, data):
    events = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    return events


feed_whole.garbage = feed_bytewise.garbage = False


def feeds(before: bytes, after: bytes):
    def feed_with_garbage(parser, data):
        return parser.feed(before + data + after)

    feed_with_garbage.garbage = True
    return pytest.mark.parametrize("feed", [feed_whole, feed_bytewise, feed_with_garbage],
                                   ids=["whole", "byte by byte", "garbage around"])


def chunked(parser, stream: bytes, chunk: int) -> list:
    """Feed ``stream`` in pieces of ``chunk`` bytes; every event that comes out."""
    events: list = []
    for i in range(0, len(stream), chunk):
        events += parser.feed(stream[i : i + chunk])
    return events
