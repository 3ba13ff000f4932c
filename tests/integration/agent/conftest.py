"""Fixtures for the agent tests, all real: Redis, the control plane (create_app),
coturn, the agent process and the renderer stub process it starts.

Tests drive the control plane through its session API and ops API, as the
frontend and an operator would; the player is aiortc, relay-only through
coturn. The player connects straight to the agent's private IP with the token
the session API issued (what the regional router forwards; the router itself
has its own tests).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from control_plane.app import create_app
from control_plane.broker_settings import BrokerSettings
from control_plane.settings import ControlPlaneSettings, RegionConfig
from regional_stack.coturn.local import start_coturn
from simulators.player import Player
from streamfleet import turn
from streamfleet.localproc import ManagedProcess, free_port
from streamfleet.tokens import StreamClaims, b64url_decode, b64url_encode, sign
from tests.fixtures.cloud import Cloud
from tests.fixtures.servers import RedisServer

TURN_SECRET = "fake-turn-secret-for-tests"
AGENT_SECRET = "fake-agent-secret-for-tests"
ADMIN_TOKEN = "fake-admin-token-for-tests"
TOKEN_KEY = b"k" * 32
TOKEN_KEYS = {"t1": b64url_encode(TOKEN_KEY)}
REGION = "eu-west-1"
REDIS_DB = 6
AGENT_CIDR = "127.44.0.0/16"
_ids = itertools.count(10)

Session = dict[str, Any]


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


# -- control plane -----------------------------------------------------------


@dataclass
class ControlPlane:
    url: str

    async def _call(
        self, method: str, path: str, *, bearer: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + path, json=body, headers=headers) as resp,
        ):
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def create_session(
        self, client_id: str, *, expect: int = 201, **configuration: Any
    ) -> Session:
        """`expect`: 201 (assigned) or 202 (queued)."""
        status, body = await self._call(
            "POST",
            "/v1/sessions",
            body={"client_id": client_id, "model": "car", "configuration": configuration},
        )
        assert status == expect, (status, body)
        return dict(body)

    async def get_session(self, session: Session) -> Session:
        status, body = await self._call(
            "GET", f"/v1/sessions/{session['session_id']}", bearer=session["session_secret"]
        )
        assert status == 200, (status, body)
        return dict(body)

    async def delete_session(self, session: Session) -> None:
        status, body = await self._call(
            "DELETE", f"/v1/sessions/{session['session_id']}", bearer=session["session_secret"]
        )
        assert status < 300, (status, body)

    async def wait_session(
        self, session: Session, check: Callable[[Session], bool], within_s: float = 15
    ) -> Session:
        async with asyncio.timeout(within_s):
            while True:
                view = await self.get_session(session)
                if check(view):
                    return view
                await asyncio.sleep(0.1)

    async def wait_ended(self, session: Session, within_s: float = 15) -> str:
        view = await self.wait_session(session, lambda v: v["state"] == "ended", within_s)
        return str(view["end_reason"])

    async def instance(self, instance_id: str) -> dict[str, Any] | None:
        status, body = await self._call("GET", f"/v1/pools/{REGION}/instances", bearer=ADMIN_TOKEN)
        assert status == 200, (status, body)
        return next((i for i in body["instances"] if i["instance_id"] == instance_id), None)

    async def wait_serving(self, instance_id: str, session_id: str, within_s: float = 20) -> None:
        """Until the instance serves the session (the ops API; the agent's /healthz
        tells nobody whom it serves)."""
        async with asyncio.timeout(within_s):
            while True:
                row = await self.instance(instance_id)
                if row is not None and row["session_id"] == session_id:
                    return
                await asyncio.sleep(0.05)

    async def wait_instance(self, instance_id: str, state: str, within_s: float = 20) -> None:
        async with asyncio.timeout(within_s):
            while True:
                row = await self.instance(instance_id)
                if row is not None and row["state"] == state:
                    return
                await asyncio.sleep(0.1)


ControlPlaneFactory = Callable[..., Awaitable[ControlPlane]]


@pytest.fixture
async def start_control_plane(
    redis_server: RedisServer, coturn: Coturn, cloud: Cloud
) -> AsyncIterator[ControlPlaneFactory]:
    # A database of our own, emptied per test: no instance of an earlier test
    # (its agent gone, its heartbeat still fresh) can take this test's session.
    url = f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB}"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    runners: list[web.AppRunner] = []

    async def start(
        *,
        turn_secret: str = TURN_SECRET,
        idle_timeout_s: float = 600.0,
        max_duration_s: float = 7200.0,
        **broker: Any,
    ) -> ControlPlane:
        """A control plane; its timeouts reach the agents in their registration answer."""
        settings = ControlPlaneSettings(
            redis_url=url,
            regions=[
                RegionConfig(
                    name=REGION,
                    geography="eu",
                    lat=53.35,
                    lon=-6.26,
                    router_url="http://127.0.0.1:9",
                    turn_uris=coturn.uris,
                    private_cidrs=[AGENT_CIDR],
                )
            ],
            agent_identity_keys={REGION: cloud.public_pem()},
            agent_token_key=SecretStr(b64url_encode(b"a" * 32)),
            ec2_endpoint_url=cloud.endpoint_url,
            token_keys={k: SecretStr(v) for k, v in TOKEN_KEYS.items()},
            turn_secret=SecretStr(turn_secret),
            agent_secrets={REGION: SecretStr(AGENT_SECRET)},
            admin_token=SecretStr(ADMIN_TOKEN),
            rate_limit_per_minute=10_000,
            session_idle_timeout_s=idle_timeout_s,
            session_max_duration_s=max_duration_s,
            broker=BrokerSettings(**{"heartbeat_interval_s": 1.0, **broker}),
        )
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return ControlPlane(f"http://127.0.0.1:{port}")

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()


# -- agent ---------------------------------------------------------------------


@dataclass
class AgentProcess:
    process: ManagedProcess
    instance_id: str
    private_ip: str
    port: int

    @property
    def signal_url(self) -> str:
        return f"ws://{self.private_ip}:{self.port}/signal"

    def player(
        self,
        session: Session,
        *,
        token: str | None = None,
        ice_from_config: bool = False,
        report_activity: bool = True,
    ) -> Player:
        """A relay-only player for a session-API answer, straight to this agent.

        `ice_from_config`: take the ICE servers from the agent's `config`
        message, as Epic's unmodified library does, not from the session API.
        """
        assert session["stream"]["signaling_url"].endswith(f"/i/{self.private_ip}/signal")
        return Player(
            self.signal_url,
            session["stream"]["token"] if token is None else token,
            ice_servers=[] if ice_from_config else session["ice_servers"],
            report_activity=report_activity,
        )

    @staticmethod
    def epoch_of(token: str) -> int:
        """The epoch a stream token names (its payload is signed, not secret)."""
        payload = b64url_decode(token.split(".")[2]).decode()
        return int(payload.split("|")[3])

    def token(self, session_id: str, epoch: int, *, ttl_s: int = 300, **overrides: Any) -> str:
        """A token signed with the control plane's key, for claims it would never issue."""
        claims: dict[str, Any] = {
            "session_id": session_id,
            "instance_id": self.instance_id,
            "private_ip": self.private_ip,
            "epoch": epoch,
            "expires_unix": int(time.time()) + ttl_s,
            **overrides,
        }
        return sign(StreamClaims(**claims), kid="t1", key=TOKEN_KEY)

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
async def start_agent(tmp_path: Path, coturn: Coturn, cloud: Cloud) -> AsyncIterator[AgentFactory]:
    started: list[AgentProcess] = []

    async def start(control_plane: ControlPlane, **settings: Any) -> AgentProcess:
        n = next(_ids)
        private_ip = f"127.44.{os.getpid() % 250}.{n % 250}"
        # The cloud runs the instance on that address and signs its identity document.
        instance_id = await asyncio.to_thread(cloud.launch, REGION, private_ip)
        port = int(settings.pop("port", 0)) or free_port(private_ip)
        env = {
            **os.environ,
            "STREAMFLEET_AGENT_CONTROL_PLANE_URL": control_plane.url,
            "STREAMFLEET_AGENT_REGION": REGION,
            "STREAMFLEET_AGENT_SECRET": AGENT_SECRET,
            "STREAMFLEET_AGENT_INSTANCE_ID": instance_id,
            "STREAMFLEET_AGENT_IMDS_URL": cloud.imds.url_for(instance_id),
            "STREAMFLEET_AGENT_NONCE_FILE": str(tmp_path / f"nonce-{n}"),
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
        await control_plane.wait_instance(instance_id, "ready")
        return agent

    try:
        yield start
    finally:
        for agent in started:
            agent.process.stop()
