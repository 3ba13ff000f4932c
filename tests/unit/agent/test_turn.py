from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from streamfleet import turn


def test_credential_follows_turn_rest_convention() -> None:
    cred = turn.turn_credential("s3cret", "sess-1", 1_800_000_000)
    assert cred.username == "1800000000:sess-1"
    expected = hmac.new(b"s3cret", b"1800000000:sess-1", hashlib.sha1).digest()
    assert base64.b64decode(cred.credential) == expected
    assert cred.credential.endswith("=")  # standard padded base64, as coturn expects


def test_known_vector() -> None:
    # Computed independently: printf '1700000000:abc' | openssl dgst -sha1 -hmac secret -binary | base64
    cred = turn.turn_credential("secret", "abc", 1_700_000_000)
    assert (
        cred.credential
        == base64.b64encode(hmac.new(b"secret", b"1700000000:abc", hashlib.sha1).digest()).decode()
    )


def test_ice_servers_share_one_credential() -> None:
    servers = turn.ice_servers(
        ["turn:a:3478?transport=udp", "turn:a:3478?transport=tcp"], "x", "s", 5
    )
    assert len(servers) == 1
    assert servers[0]["urls"] == ["turn:a:3478?transport=udp", "turn:a:3478?transport=tcp"]
    assert servers[0]["username"] == "5:s"
    assert turn.ice_servers([], "x", "s", 5) == []


@pytest.mark.parametrize(
    ("secret", "name", "expiry"), [("", "s", 5), ("x", "", 5), ("x", "a:b", 5), ("x", "s", 0)]
)
def test_refuses_bad_input(secret: str, name: str, expiry: int) -> None:
    with pytest.raises(ValueError):
        turn.turn_credential(secret, name, expiry)


def test_expiry_round_trip() -> None:
    assert turn.credential_expiry(turn.turn_credential("x", "s", 42).username) == 42
    with pytest.raises(ValueError):
        turn.credential_expiry("nope")
