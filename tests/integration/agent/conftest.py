"""Fixtures for the agent tests: real coturn, a real agent process with its real
renderer stub process, and a stand-in for the control plane's agent API.

The stand-in (StandInControlPlane) implements docs/contracts.md "Agent API"
and nothing else; the session-API tests use the real control plane.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from regional_stack.coturn.local import start_coturn
from streamfleet import turn
from streamfleet.localproc import ManagedProcess, free_port
from streamfleet.tokens import StreamClaims, b64url_encode, sign

TURN_SECRET = "fake-turn-secret-for-tests"
AGENT_SECRET = "fake-agent-secret-for-tests"
TOKEN_KEY = b"k" * 32
TOKEN_KEYS = {"t1": b64url_encode(TOKEN_KEY)}
REGION = "eu-west-1"
_ip_counter = itertools.count(10)


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str
    process: ManagedProcess

    @property
    def uris(self) -> list[str]:
        return [f"turn:127.0.0.1:{self.port}?transport=udp"]

    def ice_servers(self, name: str, *, secret: str | None = None) -> list[dict[str, object]]:
        return turn.ice_servers(self.uris, secret or self.secret, name, int(time.time()) + 600)


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    port = free_port()
    # A relay range of our own, away from other test sessions' coturns.
    base = 40000 + (os.getpid() % 150) * 100
    proc = start_coturn(
        port=port,
        secret=TURN_SECRET,
        workdir=tmp_path_factory.mktemp("coturn"),
        min_port=base,
        max_port=base + 99,
    )
    try:
        yield Coturn(port, TURN_SECRET, proc)
    finally:
        proc.stop()


@dataclass
class StandInControlPlane:
    """Records what agents say and answers heartbeats with an assignment we control."""

    url: str = ""
    registrations: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    assignment: dict[str, Any] | None = None
    commands: list[str] = field(default_factory=list)
    epoch: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {AGENT_SECRET}"

    async def register(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        body = await request.json()
        self.registrations.append(body)
        self.changed.set()
        return web.json_response(
            {"instance_id": body["instance_id"], "state": "booting", "heartbeat_interval_s": 1.0}
        )

    async def heartbeat(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        self.heartbeats.append(await request.json())
        commands, self.commands = self.commands, []
        return web.json_response({"assignment": self.assignment, "commands": commands})

    async def event(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        body = await request.json()
        self.events.append(body)
        ended = body["type"] == "session_ended"
        if ended and self.assignment is not None and body.get("epoch") == self.assignment["epoch"]:
            self.assignment = None
        self.changed.set()
        return web.Response(status=202)

    def assign(self, session_id: str, *, claim_ttl_s: float = 90.0) -> int:
        self.epoch += 1
        self.assignment = {
            "session_id": session_id,
            "epoch": self.epoch,
            "claim_expires_unix": time.time() + claim_ttl_s,
        }
        return self.epoch

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def wait_event(
        self,
        kind: str,
        *,
        within_s: float = 15.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        async with asyncio.timeout(within_s):
            while True:
                for e in self.events:
                    if e["type"] == kind and (where is None or where(e)):
                        return e
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def stand_in() -> AsyncIterator[StandInControlPlane]:
    cp = StandInControlPlane()
    app = web.Application()
    app.router.add_post("/v1/agents/register", cp.register)
    app.router.add_post("/v1/agents/heartbeat", cp.heartbeat)
    app.router.add_post("/v1/agents/events", cp.event)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    cp.url = f"http://127.0.0.1:{port}"
    try:
        yield cp
    finally:
        await runner.cleanup()


@dataclass
class AgentProcess:
    process: ManagedProcess
    instance_id: str
    private_ip: str
    port: int

    @property
    def signal_url(self) -> str:
        return f"ws://{self.private_ip}:{self.port}/signal"

    def token(self, session_id: str, epoch: int, *, ttl_s: int = 300, **overrides: Any) -> str:
        claims = {
            "session_id": session_id,
            "instance_id": self.instance_id,
            "private_ip": self.private_ip,
            "epoch": epoch,
            "expires_unix": int(time.time()) + ttl_s,
        }
        claims.update(overrides)
        return sign(StreamClaims(**claims), kid="t1", key=overrides.pop("key", TOKEN_KEY))

    async def health(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{self.private_ip}:{self.port}/healthz") as resp,
        ):
            data: dict[str, Any] = await resp.json()
            return data

    async def wait_health(
        self, check: Callable[[dict[str, Any]], bool], *, within_s: float = 20.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(within_s):
            while True:
                if not self.process.alive():
                    raise RuntimeError(f"agent exited:\n{self.process.log_tail(40)}")
                try:
                    health = await self.health()
                    if check(health):
                        return health
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)


AgentFactory = Callable[..., Awaitable[AgentProcess]]


@pytest.fixture
async def start_agent(tmp_path: Path, coturn: Coturn) -> AsyncIterator[AgentFactory]:
    started: list[AgentProcess] = []

    async def start(control_plane_url: str, **settings: Any) -> AgentProcess:
        n = next(_ip_counter)
        private_ip = f"127.44.{os.getpid() % 250}.{n % 250}"
        instance_id = f"i-test{os.getpid()}x{n}"
        port = free_port(private_ip)
        env = {
            **os.environ,
            "STREAMFLEET_AGENT_CONTROL_PLANE_URL": control_plane_url,
            "STREAMFLEET_AGENT_REGION": REGION,
            "STREAMFLEET_AGENT_SECRET": AGENT_SECRET,
            "STREAMFLEET_AGENT_INSTANCE_ID": instance_id,
            "STREAMFLEET_AGENT_PRIVATE_IP": private_ip,
            "STREAMFLEET_AGENT_PORT": str(port),
            "STREAMFLEET_AGENT_STREAMER_PORT": str(free_port()),
            "STREAMFLEET_AGENT_TOKEN_KEYS": json.dumps(TOKEN_KEYS),
            "STREAMFLEET_AGENT_TURN_URIS": json.dumps(coturn.uris),
            "STREAMFLEET_AGENT_TURN_SECRET": coturn.secret,
            "STREAMFLEET_AGENT_ICE_TRANSPORT_POLICY": "relay",
            "STREAMFLEET_AGENT_HEARTBEAT_INTERVAL_S": "1.0",
            "STREAMFLEET_AGENT_RENDER_FPS": "20",
            "STREAMFLEET_AGENT_RENDERER_RESTART_BACKOFF_S": "0.2",
        }
        for key, value in settings.items():
            env[f"STREAMFLEET_AGENT_{key.upper()}"] = str(value)
        proc = ManagedProcess(
            name=f"agent:{instance_id}",
            argv=[sys.executable, "-m", "streamfleet.cli", "agent"],
            log_path=tmp_path / f"agent-{n}.log",
            env=env,
        ).start()
        agent = AgentProcess(proc, instance_id, private_ip, port)
        started.append(agent)
        await agent.wait_health(lambda h: h["state"] == "ready" and h["registered"])
        return agent

    try:
        yield start
    finally:
        for agent in started:
            agent.process.stop()
