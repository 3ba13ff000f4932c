"""Attesting an agent at registration, and checking its agent token after.

Order of the registration checks (each refusal is a 403 problem naming the
field and changes nothing): the cloud's signature on the identity document;
the document's instance id, region and private IP equal the request's; the
IP lies in the region's configured ranges; EC2 records the instance as
pending or running with that IP now. The nonce binding and the "IP of no
other live instance, never changed" rules are atomic in region_register.lua.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from control_plane.api.problems import Problem
from control_plane.cloud import CloudRecord, CloudUnavailable
from control_plane.identity import (
    AgentClaims,
    IdentityError,
    issue_agent_token,
    load_public_key,
    verify_agent_token,
    verify_document,
)
from control_plane.settings import ControlPlaneSettings
from streamfleet.tokens import b64url_decode
from streamfleet.wire import RegisterRequest

LIVE_CLOUD_STATES = frozenset({"pending", "running"})


class Directory(Protocol):
    async def lookup(self, region: str, instance_id: str) -> CloudRecord | None: ...


def _refuse(detail: str, field: str) -> Problem:
    return Problem(403, "identity-refused", "Instance identity refused", detail, field=field)


class Attestor:
    def __init__(self, settings: ControlPlaneSettings, directory: Directory) -> None:
        self._keys: dict[str, rsa.RSAPublicKey] = {
            region: load_public_key(pem) for region, pem in settings.agent_identity_keys.items()
        }
        self._ranges = {
            r.name: [ipaddress.ip_network(c) for c in r.private_cidrs] for r in settings.regions
        }
        secret = settings.agent_token_key.get_secret_value()
        self._token_key = b64url_decode(secret) if secret else b""
        self._ttl_s = settings.agent_token_ttl_s
        self._directory = directory

    async def attest(self, req: RegisterRequest) -> None:
        key = self._keys.get(req.region)
        if key is None:
            raise _refuse("no identity key is configured for this region", "region")
        try:
            doc = verify_document(req.identity_document, req.identity_signature, key)
        except IdentityError as exc:
            raise _refuse(exc.reason, "identity_signature") from None
        for name, claimed, signed in (
            ("instance_id", req.instance_id, doc.instance_id),
            ("region", req.region, doc.region),
            ("private_ip", req.private_ip, doc.private_ip),
        ):
            if claimed != signed:
                raise _refuse(f"{name} differs from the identity document", name)
        ip = ipaddress.ip_address(req.private_ip)
        if not any(ip in net for net in self._ranges.get(req.region, [])):
            raise _refuse("private_ip is outside the region's private ranges", "private_ip")
        try:
            record = await self._directory.lookup(req.region, req.instance_id)
        except CloudUnavailable:
            raise Problem(
                503, "cloud-unavailable", "Cannot ask the cloud about the instance now",
                headers={"Retry-After": "2"},
            ) from None  # fmt: skip
        if record is None or record.state not in LIVE_CLOUD_STATES:
            raise _refuse("the cloud records no such running instance", "instance_id")
        if record.private_ip != req.private_ip:
            raise _refuse("the cloud records another private IP for the instance", "private_ip")

    def issue(self, instance_id: str, region: str, now_unix: float) -> tuple[str, int]:
        expires = int(now_unix + self._ttl_s)
        return issue_agent_token(
            AgentClaims(instance_id, region, expires), self._token_key
        ), expires

    def check(self, token: str, instance_id: str, region: str, now_unix: float) -> AgentClaims:
        """The bearer is this instance's own, unexpired agent token, else 403."""
        if not self._token_key:
            raise Problem(403, "forbidden", "Agent tokens are not configured")
        try:
            claims = verify_agent_token(token, self._token_key, now_unix=now_unix)
        except IdentityError as exc:
            raise Problem(403, "forbidden", "Not a valid agent token", exc.reason) from None
        if claims.instance_id != instance_id:
            raise Problem(
                403, "forbidden", "The agent token is another instance's", field="instance_id"
            )
        if claims.region != region:
            raise Problem(403, "forbidden", "The agent token is another region's", field="region")
        return claims
