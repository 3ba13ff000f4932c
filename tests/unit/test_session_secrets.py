"""Session secrets: derived from the keyring and the session id, verifiable
without Redis (control_plane/session_secrets.py, docs/contracts.md)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane import session_secrets
from control_plane.session_secrets import SessionSecrets
from streamfleet.tokens import b64url_encode

K1, K2 = b"1" * 32, b"2" * 32
SID = "0123456789abcdef0123456789abcdef-0123456789abcdef"
OTHER = "0123456789abcdef0123456789abcdef-fedcba9876543210"


def test_the_documented_derivation() -> None:
    """docs/contracts.md "Session secret", computed independently."""
    subkey = hmac.new(K1, b"streamfleet/session-secret/v1", hashlib.sha256).digest()
    mac = hmac.new(subkey, SID.encode(), hashlib.sha256).digest()
    assert session_secrets.mint(SID, kid="k1", key=K1) == f"s1.k1.{b64url_encode(mac)}"


def test_verifies_for_its_session_and_key_only() -> None:
    secrets_ = SessionSecrets({"k1": K1, "k2": K2}, "k2")
    secret = secrets_.mint(SID)
    assert secret.startswith("s1.k2.")
    assert secrets_.verify(SID, secret)
    assert not secrets_.verify(OTHER, secret)
    # A rotation: minted under k1, verifiable while k1 stays in the keyring, not after.
    old = session_secrets.mint(SID, kid="k1", key=K1)
    assert secrets_.verify(SID, old)
    assert not SessionSecrets({"k2": K2}, "k2").verify(SID, old)
    # The same key under another kid name is not the same secret.
    assert not secrets_.verify(SID, old.replace("s1.k1.", "s1.k2."))


@pytest.mark.parametrize(
    "bad",
    ["", "s1", "s1.k1", "s2.k1.AAAA", "s1.k 1.AAAA", "s1.k1.@@@@", "s1.k1.A", "s1.k1.AAAA.x",
     "s1.k1." + "A" * 200, "s1.k1.ÄÄÄÄ"],
)  # fmt: skip
def test_refuses_malformed(bad: str) -> None:
    assert not SessionSecrets({"k1": K1}, "k1").verify(SID, bad)


@given(st.text(max_size=80))
def test_never_raises(text: str) -> None:
    assert not SessionSecrets({"k1": K1}, "k1").verify(SID, text)
