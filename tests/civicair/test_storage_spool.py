"""The bridge's confirmation backlog from its meta becomes two ``station`` fields (docs/delivery.md)."""

from __future__ import annotations

import pytest

from civicair.schema import storage
from civicair.schema.storage import MetaError, meta_to_line

TS = 1_800_000_000


def test_spool_backlog_is_stored_with_the_station_and_other_spool_keys_are_not():
    line = meta_to_line("lab-1", {"name": "Lab", "spool": {"evicted": 4, "boot": 9, "unconfirmed": 3,
                                                           "oldest_unconfirmed_s": 120}}, TS).decode()
    assert ",spool_unconfirmed=3i,spool_oldest_unconfirmed_s=120i " in line
    assert "evicted" not in line and "boot" not in line
    assert storage.SPOOL_FIELDS == ("spool_unconfirmed", "spool_oldest_unconfirmed_s")


def test_a_bridge_from_before_confirmations_stores_no_backlog():
    line = meta_to_line("lab-1", {"name": "Lab", "spool": {"evicted": 0, "boot": 2}}, TS).decode()
    assert "spool_" not in line
    assert "spool_" not in meta_to_line("lab-1", {"name": "Lab"}, TS).decode()


@pytest.mark.parametrize("spool, reason", [
    ([1], "must be an object"),
    ({"unconfirmed": -1}, "spool.unconfirmed' must be a whole number"),
    ({"unconfirmed": 1.5}, "spool.unconfirmed' must be a whole number"),
    ({"oldest_unconfirmed_s": True}, "spool.oldest_unconfirmed_s' must be a whole number"),
    ({"oldest_unconfirmed_s": 2**60}, "spool.oldest_unconfirmed_s' must be a whole number"),
])
def test_a_wrong_backlog_is_refused_with_a_reason(spool, reason):
    with pytest.raises(MetaError, match=reason):
        meta_to_line("lab-1", {"name": "Lab", "spool": spool}, TS)
