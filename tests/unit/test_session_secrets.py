"""Session secrets: derived from the control plane's agent token key and the
session id, verifiable without Redis (control_plane/session_secrets.py,
docs/contracts.md "Session secret")."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.session_secrets import SessionSecrets
from streamfleet.tokens import b64url_encode

KEY = b"1" * 32
SID = "0123456789abcdef0123456789abcdef-0123456789abcdef"
OTHER = "0123456789abcdef0123456789abcdef-fedcba9876543210"


def test_the_documented_derivation() -> None:
    """docs/contracts.md "Session secret", computed independently."""
    subkey = hmac.new(KEY, b"streamfleet/session-secret/v1", hashlib.sha256).digest()
    mac = hmac.new(subkey, SID.encode(), hashlib.sha256).digest()
    assert SessionSecrets(KEY).mint(SID) == f"s1.{b64url_encode(mac)}"


def test_verifies_for_its_session_and_key_only() -> None:
    secrets_ = SessionSecrets(KEY)
    secret = secrets_.mint(SID)
    assert secrets_.verify(SID, secret)
    assert not secrets_.verify(OTHER, secret)
    assert not SessionSecrets(b"2" * 32).verify(SID, secret)
    # The label separates it from any other use of the key: not a plain HMAC of the id.
    plain = b64url_encode(hmac.new(KEY, SID.encode(), hashlib.sha256).digest())
    assert not secrets_.verify(SID, "s1." + plain)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SessionSecrets(b"short")


@pytest.mark.parametrize(
    "bad", ["", "s1", "s1.", "s2.AAAA", "s1.@@@@", "s1.A", "s1.AAAA", "s1." + "A" * 80, "s1.ÄÄÄÄ"]
)
def test_refuses_malformed(bad: str) -> None:
    assert not SessionSecrets(KEY).verify(SID, bad)


@given(st.text(max_size=80))
def test_never_raises(text: str) -> None:
    assert not SessionSecrets(KEY).verify(SID, text)
