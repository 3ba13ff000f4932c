"""TURN REST credentials (coturn `use-auth-secret`), shared by both planes.

username   = "{expiry_unix}:{name}"           (name: a session id, or an instance id)
credential = base64(HMAC-SHA1(secret, username))   (standard base64, padded)

coturn recomputes the credential from its own copy of the secret and refuses
the allocation (401) once `expiry_unix` has passed, so a credential lives no
longer than the session it was issued for. Pure: time is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnCredential:
    username: str
    credential: str
    expires_unix: int


def turn_credential(secret: str, name: str, expires_unix: int) -> TurnCredential:
    if not secret:
        raise ValueError("TURN secret must not be empty")
    if ":" in name or not name:
        raise ValueError("TURN credential name must be non-empty and contain no ':'")
    if expires_unix <= 0:
        raise ValueError("expiry must be a positive unix time")
    username = f"{int(expires_unix)}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), int(expires_unix))


def ice_servers(
    uris: Sequence[str], secret: str, name: str, expires_unix: int
) -> list[dict[str, object]]:
    """The W3C `RTCIceServer` dictionaries a browser or aiortc accepts.

    One entry covers every URI: they share the credential.
    """
    if not uris:
        return []
    cred = turn_credential(secret, name, expires_unix)
    return [{"urls": list(uris), "username": cred.username, "credential": cred.credential}]


def credential_expiry(username: str) -> int:
    """The expiry a TURN REST username carries (coturn reads it the same way)."""
    head, sep, _ = username.partition(":")
    if not sep or not head.isdigit():
        raise ValueError("not a TURN REST username")
    return int(head)
