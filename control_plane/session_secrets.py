"""Session secrets that stay verifiable when Redis forgets the session.

The secret a user holds for their session (the bearer of GET/DELETE
/v1/sessions/{id} and the events stream) is derived, not random. Two versions:

    s1.<mac>                  mac = HMAC-SHA256(subkey_v1, session_id)
    s2.<payload>.<mac>        mac = HMAC-SHA256(subkey_v2, "s2." + payload)
    subkey_vN = HMAC-SHA256(AGENT_TOKEN_KEY, "streamfleet/session-secret/vN")

s2's payload (base64url of raw-deflated compact JSON, `SessionFacts`) carries what the
control plane needs to put a waiting user back in line after Redis lost the
session (docs/operations.md "Redis loses data"): id, client id, creation time,
region ranking and configuration. It is signed, not encrypted: it tells the
holder only what they sent or were told. s1 is minted for sessions rebuilt from
an agent's report (nothing else is known about them) and still verifies.

AGENT_TOKEN_KEY is a key only the control plane holds (unlike the stream-token
keys, which every router and agent has: a compromised instance must not be able
to read, end or recreate other users' sessions); the labels give session
secrets keys of their own, so no new secret is deployed. docs/contracts.md
"Session secret", docs/security.md. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import zlib
from typing import Any

from streamfleet import ids
from streamfleet.tokens import b64url_decode, b64url_encode
from streamfleet.wire import MAX_CONFIGURATION_BYTES

PREFIX = "s1."
LABEL = b"streamfleet/session-secret/v1"
PREFIX_V2 = "s2."
LABEL_V2 = b"streamfleet/session-secret/v2"
_MAX_LENGTH_V1 = 64
_MAX_REGIONS = 32
_MAX_REGION_CHARS = 64
_MAX_MODEL_CHARS = 128
_MAX_PAYLOAD_BYTES = 4 * MAX_CONFIGURATION_BYTES
# The largest payload a create can produce (configuration at its wire bound,
# every list at its bound), base64url; the bearer and query limits allow it.
MAX_SECRET_CHARS = 8000


@dataclasses.dataclass(frozen=True, slots=True)
class SessionFacts:
    """What a waiting session is rebuilt from: everything session_create wrote
    that only the user's first request knew. `ranked`: the regions to try
    first, in order; `waits_in`: where it queues; `regions`: where it may wait
    once a policy relaxes (Session.regions). `configuration` is compact JSON."""

    session_id: str
    client_id: str
    created_ms: int
    ranked: tuple[str, ...]
    waits_in: tuple[str, ...]
    regions: tuple[str, ...]
    model: str = ""
    configuration: str = "{}"


def _encode(f: SessionFacts) -> str:
    body = {
        "sid": f.session_id, "cid": f.client_id, "t": f.created_ms, "r": list(f.ranked),
        "q": list(f.waits_in), "k": list(f.regions), "m": f.model,
        "c": json.loads(f.configuration),
    }  # fmt: skip
    text = json.dumps(body, separators=(",", ":")).encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: lists of regions repeat
    return b64url_encode(packer.compress(text) + packer.flush())


def _names(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_REGIONS:
        return None
    if not all(isinstance(x, str) and 0 < len(x) <= _MAX_REGION_CHARS for x in value):
        return None
    return tuple(value)


def _decode(payload: str) -> SessionFacts | None:
    """The facts of a payload whose MAC checked; None when malformed (a key
    leak or a bug, never a user's input alone: checked anyway, bounded)."""
    try:
        unpacker = zlib.decompressobj(-15)
        text = unpacker.decompress(b64url_decode(payload), _MAX_PAYLOAD_BYTES)
        if unpacker.unconsumed_tail or not unpacker.eof:
            return None
        body = json.loads(text)
    except (ValueError, zlib.error):
        return None
    if not isinstance(body, dict) or set(body) != {"sid", "cid", "t", "r", "q", "k", "m", "c"}:
        return None
    sid, cid, t, model, conf = body["sid"], body["cid"], body["t"], body["m"], body["c"]
    ranked, waits, kept = _names(body["r"]), _names(body["q"]), _names(body["k"])
    if not (isinstance(sid, str) and ids.is_session_id(sid)):
        return None
    if not (isinstance(cid, str) and ids.CLIENT_ID.matches(cid)):
        return None
    if isinstance(t, bool) or not isinstance(t, int) or not 0 < t < 2**50:
        return None
    if ranked is None or waits is None or kept is None:
        return None
    if not (isinstance(model, str) and len(model) <= _MAX_MODEL_CHARS):
        return None
    conf_json = json.dumps(conf, separators=(",", ":"))
    if not isinstance(conf, dict) or len(conf_json) > MAX_CONFIGURATION_BYTES:
        return None
    return SessionFacts(sid, cid, t, ranked, waits, kept, model, conf_json)


class SessionSecrets:
    def __init__(self, agent_token_key: bytes) -> None:
        if len(agent_token_key) < 32:
            raise ValueError("the agent token key must be at least 32 bytes")
        self._subkey = hmac.new(agent_token_key, LABEL, hashlib.sha256).digest()
        self._subkey_v2 = hmac.new(agent_token_key, LABEL_V2, hashlib.sha256).digest()

    def _mac(self, session_id: str) -> bytes:
        return hmac.new(self._subkey, session_id.encode("ascii"), hashlib.sha256).digest()

    def _mac_v2(self, signed: str) -> bytes:
        return hmac.new(self._subkey_v2, signed.encode("ascii"), hashlib.sha256).digest()

    def mint(self, session_id: str) -> str:
        """s1: a session known by its id alone (rebuilt from an agent's report)."""
        return PREFIX + b64url_encode(self._mac(session_id))

    def mint_session(self, facts: SessionFacts) -> str:
        """s2: a new session, its facts signed into the secret."""
        signed = PREFIX_V2 + _encode(facts)
        return signed + "." + b64url_encode(self._mac_v2(signed))

    def facts(self, session_id: str, secret: str) -> SessionFacts | None:
        """The signed facts of an s2 secret minted for `session_id`, else None
        (s1, forged, another session's, malformed). Never raises."""
        if len(secret) > MAX_SECRET_CHARS or not secret.startswith(PREFIX_V2):
            return None
        if not secret.isascii():
            return None
        signed, _, mac_text = secret.rpartition(".")
        try:
            mac = b64url_decode(mac_text)
        except ValueError:
            return None
        if signed == PREFIX_V2[:-1] or not hmac.compare_digest(mac, self._mac_v2(signed)):
            return None
        got = _decode(signed[len(PREFIX_V2) :])
        return got if got is not None and got.session_id == session_id else None

    def verify(self, session_id: str, secret: str) -> bool:
        """Is `secret` one minted for `session_id` (s1 or s2)? Never raises."""
        if secret.startswith(PREFIX_V2):
            return self.facts(session_id, secret) is not None
        if len(secret) > _MAX_LENGTH_V1 or not secret.startswith(PREFIX):
            return False
        if not (secret.isascii() and session_id.isascii()):
            return False
        try:
            mac = b64url_decode(secret[len(PREFIX) :])
        except ValueError:
            return False
        return hmac.compare_digest(mac, self._mac(session_id))
