"""Session secrets: derived from the control plane's agent token key and the
session id, verifiable without Redis (control_plane/session_secrets.py,
docs/contracts.md "Session secret")."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.session_secrets import MAX_SECRET_CHARS, SessionFacts, SessionSecrets
from streamfleet.tokens import b64url_decode, b64url_encode
from streamfleet.wire import MAX_CONFIGURATION_BYTES

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


def deflated(body: object) -> str:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return b64url_encode(packer.compress(json.dumps(body).encode()) + packer.flush())


# -- s2: the session's facts signed in (docs/contracts.md "Session secret") ---

FACTS = SessionFacts(
    SID, "client-1", 1_700_000_000_123, ("eu-central-1", "eu-west-1"), ("eu-central-1",),
    ("eu-central-1", "eu-west-1", "us-east-1"), "configurator", '{"paint":"red"}',
)  # fmt: skip


def test_s2_documented_derivation() -> None:
    secret = SessionSecrets(KEY).mint_session(FACTS)
    prefix, payload, mac_text = secret.split(".")
    assert prefix == "s2"
    body = json.loads(zlib.decompress(b64url_decode(payload), -15))
    assert body == {
        "sid": SID, "cid": "client-1", "t": 1_700_000_000_123,
        "r": ["eu-central-1", "eu-west-1"], "q": ["eu-central-1"],
        "k": ["eu-central-1", "eu-west-1", "us-east-1"], "m": "configurator",
        "c": {"paint": "red"},
    }  # fmt: skip
    subkey = hmac.new(KEY, b"streamfleet/session-secret/v2", hashlib.sha256).digest()
    mac = hmac.new(subkey, f"s2.{payload}".encode(), hashlib.sha256).digest()
    assert mac_text == b64url_encode(mac)


def test_s2_gives_back_its_facts_for_its_session_and_key_only() -> None:
    secrets_ = SessionSecrets(KEY)
    secret = secrets_.mint_session(FACTS)
    assert secrets_.facts(SID, secret) == FACTS
    assert secrets_.verify(SID, secret)
    assert secrets_.facts(OTHER, secret) is None and not secrets_.verify(OTHER, secret)
    assert SessionSecrets(b"2" * 32).facts(SID, secret) is None
    # s1 carries no facts but still verifies; an s1 MAC is no s2 one.
    assert secrets_.facts(SID, secrets_.mint(SID)) is None
    assert secrets_.verify(SID, secrets_.mint(SID))


def test_s2_payload_cannot_be_changed() -> None:
    secrets_ = SessionSecrets(KEY)
    _, payload, mac = secrets_.mint_session(FACTS).split(".")
    body = json.loads(zlib.decompress(b64url_decode(payload), -15))
    for field, value in (("t", 1_900_000_000_000), ("q", ["us-east-1"]), ("cid", "mallory")):
        forged = deflated({**body, field: value})
        assert secrets_.facts(SID, f"s2.{forged}.{mac}") is None


def test_s2_at_its_largest_fits_the_credential_bounds() -> None:
    """A configuration at its wire bound that does not compress, every other
    field at its bound, 24 regions: still under the bearer/query limit
    (MAX_SECRET_CHARS, below aiohttp's and nginx's 8 KiB lines), and it round-trips."""
    noise = b"".join(hashlib.sha256(bytes([i, j])).digest() for i in range(16) for j in range(8))
    text = b64url_encode(noise)[: MAX_CONFIGURATION_BYTES - 8]
    conf = json.dumps({"k": text}, separators=(",", ":"))
    assert len(conf) == MAX_CONFIGURATION_BYTES
    regions = tuple(f"ap-southeast-{i}" for i in range(24))
    big = dataclasses.replace(
        FACTS, client_id="c" * 128, ranked=regions, waits_in=regions, regions=regions,
        model="m" * 64, configuration=conf,
    )  # fmt: skip
    secret = SessionSecrets(KEY).mint_session(big)
    assert len(secret) <= MAX_SECRET_CHARS
    assert SessionSecrets(KEY).facts(SID, secret) == big


@given(st.text(max_size=200))
def test_s2_never_raises(tail: str) -> None:
    assert SessionSecrets(KEY).facts(SID, "s2." + tail) is None
    assert not SessionSecrets(KEY).verify(SID, "s2." + tail)


def test_signed_but_malformed_payloads_give_no_facts() -> None:
    """Only a leaked key or a bug signs these; they are refused all the same."""
    secrets_ = SessionSecrets(KEY)
    body = json.loads(
        zlib.decompress(b64url_decode(secrets_.mint_session(FACTS).split(".")[1]), -15)
    )
    bad: list[dict[str, object]] = [
        {**body, "t": "1"}, {**body, "t": True}, {**body, "q": []}, {**body, "r": "eu"},
        {**body, "c": []}, {**body, "cid": ""}, {**body, "sid": "nope"}, {**body, "x": 1},
    ]  # fmt: skip
    for b in bad:
        payload = deflated(b)
        signed = f"s2.{payload}"
        mac = hmac.new(
            hmac.new(KEY, b"streamfleet/session-secret/v2", hashlib.sha256).digest(),
            signed.encode(), hashlib.sha256,
        ).digest()  # fmt: skip
        assert secrets_.facts(SID, f"{signed}.{b64url_encode(mac)}") is None, b
