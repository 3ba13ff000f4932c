"""The pure side of agent identity: documents verified against the cloud's key,
agent tokens bound to one instance of one region, nonces."""

from __future__ import annotations

import json

import pytest

from control_plane.identity import (
    AgentClaims,
    IdentityError,
    issue_agent_token,
    load_public_key,
    nonce_digest,
    verify_agent_token,
    verify_document,
)
from simulators.imds import IdentitySigner

SIGNER = IdentitySigner()
KEY = load_public_key(SIGNER.public_pem())
TOKEN_KEY = b"t" * 32


def test_a_signed_document_yields_its_fields() -> None:
    doc, sig = SIGNER.identity("i-0abc123", "eu-central-1", "127.11.0.7")
    got = verify_document(doc, sig, KEY)
    assert (got.instance_id, got.region, got.private_ip) == (
        "i-0abc123",
        "eu-central-1",
        "127.11.0.7",
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d, s: (d.replace("127.11.0.7", "127.11.0.8"), s),  # another IP
        lambda d, s: (d, IdentitySigner().sign(d)),  # another key
        lambda d, s: (d, "not base64!"),
        lambda d, s: (d, ""),
        lambda d, s: (d + " ", s),  # one byte more
    ],
)
def test_anything_but_the_clouds_exact_signature_is_refused(tamper: object) -> None:
    doc, sig = SIGNER.identity("i-0abc123", "eu-central-1", "127.11.0.7")
    bad_doc, bad_sig = tamper(doc, sig)  # type: ignore[operator]
    with pytest.raises(IdentityError):
        verify_document(bad_doc, bad_sig, KEY)


def test_a_signed_document_with_malformed_fields_is_refused() -> None:
    doc = json.dumps({"instanceId": "i-1", "region": "eu-central-1", "privateIp": "1.2.3",
                      "accountId": "1"})  # fmt: skip
    with pytest.raises(IdentityError, match="privateIp"):
        verify_document(doc, SIGNER.sign(doc), KEY)


def test_agent_tokens_name_one_instance_and_expire() -> None:
    token = issue_agent_token(AgentClaims("i-1", "eu-central-1", 1000), TOKEN_KEY)
    assert verify_agent_token(token, TOKEN_KEY, now_unix=999) == AgentClaims(
        "i-1", "eu-central-1", 1000
    )
    with pytest.raises(IdentityError, match="expired"):
        verify_agent_token(token, TOKEN_KEY, now_unix=1000)
    with pytest.raises(IdentityError, match="signature"):
        verify_agent_token(token, b"u" * 32, now_unix=999)
    head, _payload, mac = token.split(".")
    other = issue_agent_token(AgentClaims("i-2", "eu-central-1", 1000), TOKEN_KEY)
    with pytest.raises(IdentityError):  # another instance's payload under this signature
        verify_agent_token(f"{head}.{other.split('.')[1]}.{mac}", TOKEN_KEY, now_unix=999)
    for bad in ("", "a1..", "x" * 300, "a1.é.x"):
        with pytest.raises(IdentityError):
            verify_agent_token(bad, TOKEN_KEY, now_unix=999)


def test_nonces_are_long_random_text_and_stored_as_digests() -> None:
    assert len(nonce_digest("n" * 43)) == 64
    for bad in ("short", "n" * 129, "n" * 40 + "!"):
        with pytest.raises(IdentityError):
            nonce_digest(bad)
