"""Adapter for the control plane's agent API (docs/contracts.md "Agent API").

Bodies are built from and answers parsed with the wire models of
streamfleet/wire.py, the same ones the control plane validates with. Bearer:
the region's agent secret to register (a gate; the identity document is the
proof), then the instance's own agent token from the registration answer,
renewed by every heartbeat answer (docs/agent-identity.md). Failures raise
`ControlPlaneError`; retrying is the caller's business
(regional_stack/agent/retry.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from streamfleet.wire import (
    AgentEvent,
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
)

Answer = TypeVar("Answer", bound=BaseModel)


class ControlPlaneError(RuntimeError):
    """The control plane refused or could not be reached; `status` 0 = no answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"control plane: {status} {message}")
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


class ControlPlaneClient:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, secret: str, *, timeout_s: float = 5.0
    ) -> None:
        self._http = session
        self._base = base_url.rstrip("/")
        self._secret = secret
        self._agent_token = ""
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _post(self, path: str, body: BaseModel, *, bearer: str | None = None) -> Any:
        token = self._agent_token if bearer is None else bearer
        try:
            async with self._http.post(
                self._base + path,
                json=body.model_dump(mode="json"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._timeout,
            ) as resp:
                if resp.status >= 300:
                    text = (await resp.text())[:300]
                    raise ControlPlaneError(resp.status, f"{path}: {text}")
                if resp.status == 204 or resp.content_length == 0:
                    return None
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ControlPlaneError(0, f"{path}: {exc!r}") from exc

    async def _call(
        self, path: str, body: BaseModel, answer: type[Answer], *, bearer: str | None = None
    ) -> Answer:
        data = await self._post(path, body, bearer=bearer)
        try:
            return answer.model_validate(data)
        except ValidationError as exc:
            # Not retryable: the same control plane gives the same answer.
            raise ControlPlaneError(400, f"{path}: unexpected answer: {exc}") from exc

    async def register(self, req: RegisterRequest) -> RegisterResponse:
        answer = await self._call("/v1/agents/register", req, RegisterResponse, bearer=self._secret)
        self._agent_token = answer.agent_token
        return answer

    async def heartbeat(self, req: HeartbeatRequest) -> HeartbeatResponse:
        answer = await self._call("/v1/agents/heartbeat", req, HeartbeatResponse)
        self._agent_token = answer.agent_token
        return answer

    async def event(self, ev: AgentEvent) -> None:
        await self._post("/v1/agents/events", ev)
