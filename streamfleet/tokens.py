"""Stream token codec, shared by the control plane (signs) and the agent (verifies).

Format (docs/contracts.md, docs/design.md "Stream URL and token"):

    v1.{kid}.{payload}.{sig}
    payload = base64url(session_id|instance_id|private_ip|epoch|expires_unix)
    sig     = base64url(HMAC-SHA256(key[kid], "v1.{kid}.{payload}"))

base64url is unpadded. The nginx router re-implements `verify` in Lua; both
sides are held to one file of vectors (tests/vectors/stream_tokens.json).
Pure: no I/O, time is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from streamfleet import ids
from streamfleet.ids import is_canonical_ipv4

VERSION = "v1"
MAX_TOKEN_LENGTH = 512
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_DECIMAL_RE = re.compile(r"0|[1-9][0-9]{0,15}")


class TokenErrorCode(StrEnum):
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KID = "unknown_kid"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


class TokenError(ValueError):
    """A token that must not be honoured; `code` says why (stable, loggable)."""

    def __init__(self, code: TokenErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class StreamClaims:
    session_id: str
    instance_id: str
    private_ip: str
    epoch: int
    expires_unix: int


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url; raises ValueError on anything else."""
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - regex already rules this out
        raise ValueError(str(exc)) from exc


def _signing_input(kid: str, payload: str) -> bytes:
    return f"{VERSION}.{kid}.{payload}".encode("ascii")


def _mac(key: bytes, kid: str, payload: str) -> bytes:
    return hmac.new(key, _signing_input(kid, payload), hashlib.sha256).digest()


def _check_claims(claims: StreamClaims) -> None:
    if not ids.TOKEN_ID.matches(claims.session_id):
        raise TokenError(TokenErrorCode.MALFORMED, "session_id")
    if not ids.INSTANCE_ID.matches(claims.instance_id):
        raise TokenError(TokenErrorCode.MALFORMED, "instance_id")
    if not is_canonical_ipv4(claims.private_ip):
        raise TokenError(TokenErrorCode.MALFORMED, "private_ip")
    if not 1 <= claims.epoch < 2**53:
        raise TokenError(TokenErrorCode.MALFORMED, "epoch")
    if not 0 < claims.expires_unix < 2**53:
        raise TokenError(TokenErrorCode.MALFORMED, "expires_unix")


def sign(claims: StreamClaims, *, kid: str, key: bytes) -> str:
    """Encode and sign; refuses claims the verifier would refuse."""
    if not ids.KEY_ID.matches(kid):
        raise TokenError(TokenErrorCode.MALFORMED, "kid")
    _check_claims(claims)
    body = "|".join(
        (
            claims.session_id,
            claims.instance_id,
            claims.private_ip,
            str(claims.epoch),
            str(claims.expires_unix),
        )
    )
    payload = b64url_encode(body.encode("ascii"))
    return f"{VERSION}.{kid}.{payload}.{b64url_encode(_mac(key, kid, payload))}"


def verify(token: str, *, keys: Mapping[str, bytes], now_unix: float) -> StreamClaims:
    """Check shape, key, signature and expiry, in that order; return the claims.

    The signature is checked before the payload is parsed so that nothing an
    attacker controls is interpreted until it is authenticated.
    """
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise TokenError(TokenErrorCode.MALFORMED, "length or charset")
    parts = token.split(".")
    if len(parts) != 4:
        raise TokenError(TokenErrorCode.MALFORMED, "expected 4 dot-separated parts")
    version, kid, payload, sig_text = parts
    if version != VERSION:
        raise TokenError(TokenErrorCode.UNSUPPORTED_VERSION, version[:8])
    if not ids.KEY_ID.matches(kid):
        raise TokenError(TokenErrorCode.MALFORMED, "kid")
    try:
        sig = b64url_decode(sig_text)
        raw = b64url_decode(payload)
    except ValueError as exc:
        raise TokenError(TokenErrorCode.MALFORMED, "base64url") from exc
    key = keys.get(kid)
    if key is None:
        raise TokenError(TokenErrorCode.UNKNOWN_KID, kid)
    if len(sig) != 32 or not hmac.compare_digest(sig, _mac(key, kid, payload)):
        raise TokenError(TokenErrorCode.BAD_SIGNATURE, "signature mismatch")
    fields = raw.decode("ascii", errors="replace").split("|")
    if len(fields) != 5:
        raise TokenError(TokenErrorCode.MALFORMED, "expected 5 payload fields")
    session_id, instance_id, private_ip, epoch_text, expires_text = fields
    if not _DECIMAL_RE.fullmatch(epoch_text) or not _DECIMAL_RE.fullmatch(expires_text):
        raise TokenError(TokenErrorCode.MALFORMED, "epoch or expiry not decimal")
    claims = StreamClaims(session_id, instance_id, private_ip, int(epoch_text), int(expires_text))
    _check_claims(claims)
    if now_unix >= claims.expires_unix:
        raise TokenError(TokenErrorCode.EXPIRED, f"expired at {claims.expires_unix}")
    return claims


def parse_keyring(encoded: Mapping[str, str]) -> dict[str, bytes]:
    """Settings hold keys as kid -> base64url secret; at least 32 bytes each."""
    keys: dict[str, bytes] = {}
    for kid, text in encoded.items():
        if not ids.KEY_ID.matches(kid):
            raise ValueError(f"token key id {kid!r} must match [A-Za-z0-9_-]{{1,32}}")
        key = b64url_decode(text)
        if len(key) < 32:
            raise ValueError(f"token key {kid!r} must be at least 32 bytes")
        keys[kid] = key
    return keys
