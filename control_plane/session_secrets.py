"""Session secrets that stay verifiable when Redis forgets the session.

The secret a user holds for their session (the bearer of GET/DELETE
/v1/sessions/{id} and the events stream) is derived, not random:

    secret = "s1." + base64url(HMAC-SHA256(subkey, session_id))
    subkey = HMAC-SHA256(AGENT_TOKEN_KEY, "streamfleet/session-secret/v1")

AGENT_TOKEN_KEY is a key only the control plane holds (unlike the stream-token
keys, which every router and agent has: a compromised instance must not be able
to read or end other users' sessions); the label gives session secrets a key
of their own, so no new secret is deployed. After Redis lost data, a session
rebuilt from its agent (docs/operations.md) answers the secret its user
already holds. docs/contracts.md "Session secret". Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac

from streamfleet.tokens import b64url_decode, b64url_encode

PREFIX = "s1."
LABEL = b"streamfleet/session-secret/v1"
_MAX_LENGTH = 64


class SessionSecrets:
    def __init__(self, agent_token_key: bytes) -> None:
        if len(agent_token_key) < 32:
            raise ValueError("the agent token key must be at least 32 bytes")
        self._subkey = hmac.new(agent_token_key, LABEL, hashlib.sha256).digest()

    def _mac(self, session_id: str) -> bytes:
        return hmac.new(self._subkey, session_id.encode("ascii"), hashlib.sha256).digest()

    def mint(self, session_id: str) -> str:
        return PREFIX + b64url_encode(self._mac(session_id))

    def verify(self, session_id: str, secret: str) -> bool:
        """Is `secret` the one minted for `session_id`? Never raises."""
        if len(secret) > _MAX_LENGTH or not secret.startswith(PREFIX):
            return False
        if not (secret.isascii() and session_id.isascii()):
            return False
        try:
            mac = b64url_decode(secret[len(PREFIX) :])
        except ValueError:
            return False
        return hmac.compare_digest(mac, self._mac(session_id))
