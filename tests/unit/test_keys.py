"""Keys that change together share one Redis Cluster slot."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from control_plane import keys
from streamfleet import ids


def test_region_keys_share_a_slot_and_differ_by_region() -> None:
    eu = {key_slot(k.encode()) for k in keys.region_keys("eu-central-1")}
    assert len(eu) == 1
    assert keys.region_keys("eu-central-1")[0].startswith("sf:{eu-central-1}:")


def test_session_keys_derive_from_the_session_id_and_share_a_slot() -> None:
    sid = keys.new_session_id("alice")
    pointer, session = keys.session_keys(sid)
    assert key_slot(pointer.encode()) == key_slot(session.encode())
    # Another session of the same client lands in the same slot and pointer.
    other = keys.new_session_id("alice")
    assert keys.session_keys(other)[0] == pointer and other != sid
    assert keys.session_keys(keys.new_session_id("bob"))[0] != pointer


@pytest.mark.parametrize("bad", ["", "x", "0" * 32, "0" * 32 + "-" + "0" * 15, "../" + "0" * 46])
def test_malformed_session_ids_are_refused(bad: str) -> None:
    assert not ids.is_session_id(bad)
    with pytest.raises(ValueError):
        keys.session_keys(bad)
