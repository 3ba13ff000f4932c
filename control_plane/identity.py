"""Agent identity, pure: the cloud-signed instance identity document and the
per-instance agent token (docs/agent-identity.md).

An agent proves which instance it runs on with the EC2 instance identity
document (IMDS /latest/dynamic/instance-identity/document) and its signature
(/signature: base64 RSA-SHA256 over the document's bytes, made with the
region's AWS key; AWS publishes the public certificate per region). The
control plane holds only that public half, so nobody but the cloud can mint a
document. What the document says is then checked against what the cloud
records now (control_plane/cloud.py), and the registration binds a nonce the
agent chose (a replayed document without it is refused).

The agent token the control plane answers with is what every heartbeat and
event carries: HMAC-SHA256 with a key only the control plane has over
`instance id | region | expiry`. It names one instance of one region, so a
leaked token acts for that instance only, and only until it expires.
No I/O; time is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from streamfleet import ids
from streamfleet.ids import is_canonical_ipv4
from streamfleet.tokens import b64url_decode, b64url_encode

MAX_DOCUMENT_BYTES = 4096
AGENT_TOKEN_VERSION = "a1"  # noqa: S105 - a format tag, not a secret
MAX_AGENT_TOKEN_LENGTH = 256
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{32,128}")


class IdentityError(ValueError):
    """Not a proof of identity; `reason` is stable and safe to log or answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    """What the cloud signed about the instance."""

    instance_id: str
    region: str
    private_ip: str
    account_id: str


@dataclass(frozen=True, slots=True)
class AgentClaims:
    instance_id: str
    region: str
    expires_unix: int


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """A region's signing key from AWS's published certificate or a bare public key."""
    data = pem.strip().encode("ascii")
    key = (
        x509.load_pem_x509_certificate(data).public_key()
        if b"BEGIN CERTIFICATE" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the identity key must be RSA (AWS signs documents with RSA-SHA256)")
    return key


def verify_document(document: str, signature_b64: str, key: rsa.RSAPublicKey) -> InstanceIdentity:
    """Check the cloud's signature first, then read the signed fields."""
    raw = document.encode("utf-8")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise IdentityError("identity document too large")
    try:
        signature = base64.b64decode("".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise IdentityError("identity signature is not base64") from None
    try:
        key.verify(signature, raw, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise IdentityError("identity signature does not verify") from None
    return parse_document(document)


def parse_document(document: str) -> InstanceIdentity:
    try:
        data = json.loads(document)
    except ValueError:
        raise IdentityError("identity document is not JSON") from None
    if not isinstance(data, dict):
        raise IdentityError("identity document is not a JSON object")
    fields = {k: data.get(k) for k in ("instanceId", "region", "privateIp", "accountId")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise IdentityError("identity document lacks instanceId, region, privateIp or accountId")
    identity = InstanceIdentity(
        instance_id=str(fields["instanceId"]),
        region=str(fields["region"]),
        private_ip=str(fields["privateIp"]),
        account_id=str(fields["accountId"]),
    )
    if not ids.INSTANCE_ID.matches(identity.instance_id) or not ids.REGION.matches(identity.region):
        raise IdentityError("identity document has a malformed instanceId or region")
    if not is_canonical_ipv4(identity.private_ip):
        raise IdentityError("identity document has a malformed privateIp")
    return identity


def check_nonce(nonce: str) -> str:
    """The agent's registration nonce (random, 32-128 base64url characters)."""
    if not _NONCE_RE.fullmatch(nonce):
        raise IdentityError("nonce must be 32-128 base64url characters")
    return nonce


def nonce_digest(nonce: str) -> str:
    """Stored instead of the nonce, so a Redis reader cannot re-register as the instance."""
    return hashlib.sha256(check_nonce(nonce).encode("ascii")).hexdigest()


def _agent_mac(key: bytes, payload: str) -> str:
    signing_input = f"{AGENT_TOKEN_VERSION}.{payload}".encode("ascii")
    return b64url_encode(hmac.new(key, signing_input, hashlib.sha256).digest())


def issue_agent_token(claims: AgentClaims, key: bytes) -> str:
    body = f"{claims.instance_id}|{claims.region}|{claims.expires_unix}"
    payload = b64url_encode(body.encode("ascii"))
    return f"{AGENT_TOKEN_VERSION}.{payload}.{_agent_mac(key, payload)}"


def verify_agent_token(token: str, key: bytes, *, now_unix: float) -> AgentClaims:
    """Signature before parsing, then expiry; raises IdentityError."""
    if len(token) > MAX_AGENT_TOKEN_LENGTH or not token.isascii():
        raise IdentityError("malformed agent token")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != AGENT_TOKEN_VERSION:
        raise IdentityError("malformed agent token")
    _, payload, mac = parts
    if not hmac.compare_digest(mac.encode("ascii"), _agent_mac(key, payload).encode("ascii")):
        raise IdentityError("agent token signature does not verify")
    try:
        iid, region, expires = b64url_decode(payload).decode("ascii").split("|")
        claims = AgentClaims(iid, region, int(expires))
    except ValueError:
        raise IdentityError("malformed agent token") from None
    if claims.expires_unix <= now_unix:
        raise IdentityError("agent token expired")
    return claims
