"""Session secrets that stay verifiable when Redis forgets the session.

The secret a user holds for their session (the bearer of GET/DELETE
/v1/sessions/{id} and the events stream) is derived, not stored:

    secret = "s1." + kid + "." + base64url(HMAC-SHA256(subkey, session_id))
    subkey = HMAC-SHA256(token_keys[kid], "streamfleet/session-secret/v1")

`token_keys` is the stream-token keyring (settings), so no new secret is
deployed; the label gives session secrets a key of their own, and `kid`
lets them outlive a key rotation exactly as long as the old key stays in the
keyring (which live sessions' stream tokens need anyway). After Redis lost
data, a session rebuilt from its agent (docs/operations.md) answers the secret
its user already holds. docs/contracts.md "Session secret". Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from streamfleet import ids
from streamfleet.tokens import b64url_decode, b64url_encode

VERSION = "s1"
LABEL = b"streamfleet/session-secret/v1"


def _mac(key: bytes, session_id: str) -> bytes:
    subkey = hmac.new(key, LABEL, hashlib.sha256).digest()
    return hmac.new(subkey, session_id.encode("ascii"), hashlib.sha256).digest()


def mint(session_id: str, *, kid: str, key: bytes) -> str:
    return f"{VERSION}.{kid}.{b64url_encode(_mac(key, session_id))}"


def verify(session_id: str, secret: str, *, keys: Mapping[str, bytes]) -> bool:
    """Is `secret` the one minted for `session_id` under a key still in the keyring?"""
    if len(secret) > 128 or not secret.isascii() or not session_id.isascii():
        return False
    parts = secret.split(".")
    if len(parts) != 3 or parts[0] != VERSION or not ids.KEY_ID.matches(parts[1]):
        return False
    key = keys.get(parts[1])
    if key is None:
        return False
    try:
        mac = b64url_decode(parts[2])
    except ValueError:
        return False
    return hmac.compare_digest(mac, _mac(key, session_id))


class SessionSecrets:
    """Mints with the signing key, verifies with any key of the keyring."""

    def __init__(self, keyring: Mapping[str, bytes], signing_kid: str) -> None:
        self.keyring = dict(keyring)
        self.kid = signing_kid

    def mint(self, session_id: str) -> str:
        return mint(session_id, kid=self.kid, key=self.keyring[self.kid])

    def verify(self, session_id: str, secret: str) -> bool:
        return verify(session_id, secret, keys=self.keyring)
