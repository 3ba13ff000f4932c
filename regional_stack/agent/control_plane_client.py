"""Adapter for the control plane's agent API (docs/contracts.md "Agent API").

Bearer = the region's agent secret. Failures raise `ControlPlaneError`; the
caller decides whether to retry (heartbeats simply try again next period,
events are retried in order by the agent's event sender).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from regional_stack.agent.lifecycle import Assignment


class ControlPlaneError(RuntimeError):
    """The control plane refused or could not be reached; `status` 0 = no answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"control plane: {status} {message}")
        self.status = status


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    assignment: Assignment | None
    commands: tuple[str, ...]


def parse_heartbeat_answer(body: dict[str, Any]) -> HeartbeatAnswer:
    raw = body.get("assignment")
    assignment = None
    if isinstance(raw, dict):
        expires = raw.get("claim_expires_unix")
        assignment = Assignment(
            session_id=str(raw["session_id"]),
            epoch=int(raw["epoch"]),
            claim_expires_unix=float(expires) if expires is not None else None,
        )
    commands = tuple(str(c) for c in body.get("commands") or ())
    return HeartbeatAnswer(assignment, commands)


class ControlPlaneClient:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, secret: str, *, timeout_s: float = 5.0
    ) -> None:
        self._http = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {secret}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._http.post(
                self._base + path, json=body, headers=self._headers, timeout=self._timeout
            ) as resp:
                if resp.status >= 300:
                    text = (await resp.text())[:300]
                    raise ControlPlaneError(resp.status, f"{path}: {text}")
                if resp.status == 204 or resp.content_length == 0:
                    return {}
                data = await resp.json(content_type=None)
                return data if isinstance(data, dict) else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ControlPlaneError(0, f"{path}: {exc!r}") from exc

    async def register(
        self, *, instance_id: str, region: str, private_ip: str, instance_type: str, version: str
    ) -> dict[str, Any]:
        return await self._post(
            "/v1/agents/register",
            {
                "instance_id": instance_id,
                "region": region,
                "private_ip": private_ip,
                "instance_type": instance_type,
                "version": version,
            },
        )

    async def heartbeat(self, body: dict[str, Any]) -> HeartbeatAnswer:
        return parse_heartbeat_answer(await self._post("/v1/agents/heartbeat", body))

    async def event(self, body: dict[str, Any]) -> None:
        await self._post("/v1/agents/events", body)
