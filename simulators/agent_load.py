"""Thousands of instance agents in one process: the fleet's load on the agent API.

Each simulated agent is attested like a real one (a cloud-signed identity
document of an instance moto runs, its own nonce) and then speaks through
`ControlPlaneClient`, the real agent's adapter, so every request is what
regional_stack/agent/control_plane_client.py sends: register with the
region's secret, then heartbeats and events with the instance's own agent
token, renewed by every answer.

Behaviour follows the real agent's core (regional_stack/agent/lifecycle.py)
where the control plane can see it: report `ready` once the renderer is up,
take an assignment a heartbeat answer carries while ready, end it when a later
answer no longer carries it (or says `end_session`), reset the renderer (here
at once) and report `ready` again. One heartbeat at a time per agent, every
`heartbeat_interval_s` from the registration answer, phases spread over the
interval. Players never connect: the session API load decides what is
assigned and deleted. Test and benchmark code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from regional_stack.agent.control_plane_client import ControlPlaneClient, ControlPlaneError
from streamfleet.lifecycle import InstanceState
from streamfleet.wire import AgentEvent, HeartbeatRequest, HeartbeatResponse, RegisterRequest

Identity = Callable[[str], tuple[str, str]]  # instance id -> (document, signature)


@dataclass
class LoadStats:
    """What the agents saw, from `reset()` on (the measured window)."""

    heartbeat_ms: list[float] = field(default_factory=list)
    heartbeats_late: int = 0  # answered after the next one was due
    heartbeat_errors: Counter[int] = field(default_factory=Counter)  # status (0 = no answer)
    events: int = 0
    event_errors: Counter[int] = field(default_factory=Counter)
    registrations: int = 0
    register_errors: Counter[int] = field(default_factory=Counter)
    assignments_taken: int = 0
    sessions_ended: int = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    @property
    def errors(self) -> int:
        return sum(
            c.total() for c in (self.heartbeat_errors, self.event_errors, self.register_errors)
        )


class SimAgent:
    def __init__(
        self,
        client: ControlPlaneClient,
        *,
        instance_id: str,
        region: str,
        private_ip: str,
        identity: Identity,
        stats: LoadStats,
    ) -> None:
        self.client = client
        self.instance_id = instance_id
        self.region = region
        self.private_ip = private_ip
        self._identity = identity
        self._nonce = secrets.token_urlsafe(32)  # kept for life, as the agent's nonce file
        self._stats = stats
        self.state = InstanceState.BOOTING
        self.session: tuple[str, int] | None = None
        self.last_ended_epoch = 0
        self.interval_s = 5.0
        self.draining = False  # told to drain: take nothing new, never ready again
        self._one_heartbeat = asyncio.Lock()  # a refresh never overlaps the periodic one

    async def register(self) -> None:
        """Register (retried on 429/5xx, like the agent's retry policy, a bounded few
        times), then report ready: the stub renderer is up."""
        document, signature = self._identity(self.instance_id)
        req = RegisterRequest(
            instance_id=self.instance_id, region=self.region, private_ip=self.private_ip,
            instance_type="g4dn.2xlarge", version="sim", identity_document=document,
            identity_signature=signature, nonce=self._nonce,
        )  # fmt: skip
        for attempt in range(5):
            try:
                answer = await self.client.register(req)
                break
            except ControlPlaneError as exc:
                self._stats.register_errors[exc.status] += 1
                if not exc.retryable or attempt == 4:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        self._stats.registrations += 1
        self.interval_s = answer.heartbeat_interval_s
        self.session = None
        self.state = InstanceState.READY
        await self._event("ready")

    async def _event(self, kind: str, session: tuple[str, int] | None = None) -> bool:
        ev = AgentEvent(
            instance_id=self.instance_id, region=self.region, type=kind,  # type: ignore[arg-type]
            session_id=session[0] if session else None, epoch=session[1] if session else None,
        )  # fmt: skip
        try:
            await self.client.event(ev)
            self._stats.events += 1
            return True
        except ControlPlaneError as exc:
            self._stats.event_errors[exc.status] += 1
            return False

    async def player_connected(self, session_id: str, epoch: int, *, again: bool) -> str | None:
        """A player presenting a verified stream token for (session_id, epoch), as the
        real agent's signalling handler takes it (lifecycle.check_token): an epoch
        this agent has not heard of yet is refreshed by a heartbeat now; then the
        agent reports client_connected (client_reconnected when `again`). None when
        accepted, else why it was refused."""
        if self.session is None or epoch > self.session[1]:
            if epoch <= self.last_ended_epoch:
                return "session is over (stale epoch)"
            await self.heartbeat()  # the agent's REFRESH verdict
        if self.session != (session_id, epoch):
            return "epoch is not this instance's assignment"
        if self.state is InstanceState.RESERVED or again:
            kind = "client_reconnected" if again else "client_connected"
            if not await self._event(kind, self.session):
                return f"{kind} not accepted"
            self.state = InstanceState.STREAMING
        return None

    async def player_disconnected(self, session_id: str, epoch: int) -> None:
        if self.session == (session_id, epoch):
            await self._event("client_disconnected", self.session)

    async def heartbeat(self) -> None:
        async with self._one_heartbeat:
            await self._heartbeat()

    async def _heartbeat(self) -> None:
        req = HeartbeatRequest(
            instance_id=self.instance_id, region=self.region, state=self.state,
            session_id=self.session[0] if self.session else None,
            epoch=self.session[1] if self.session else None,
            health={"gpu_util": 0.0},
        )  # fmt: skip
        started = time.perf_counter()
        try:
            answer = await self.client.heartbeat(req)
        except ControlPlaneError as exc:
            self._stats.heartbeat_errors[exc.status] += 1
            if exc.status in (401, 403, 404):  # lost us or our token: register again
                with contextlib.suppress(ControlPlaneError):  # counted; next period retries
                    await self.register()
            return
        ms = (time.perf_counter() - started) * 1000
        self._stats.heartbeat_ms.append(ms)
        if ms > self.interval_s * 1000:
            self._stats.heartbeats_late += 1
        if self._apply(answer):
            await self._event("ready")

    def _apply(self, answer: HeartbeatResponse) -> bool:
        """The agent core's reading of an answer; True when a session ended here
        (the renderer was reset and is ready again: report it)."""
        a = answer.assignment
        if "drain" in answer.commands and not self.draining:
            self.draining = True  # as lifecycle.command("drain")
            if self.session is None and self.state is InstanceState.READY:
                self.state = InstanceState.DRAINING
        if a is not None and a.epoch <= self.last_ended_epoch:
            return False  # over here already; the control plane has not heard yet
        if self.session is not None and (
            a is None or a.epoch != self.session[1] or "end_session" in answer.commands
        ):
            self.last_ended_epoch = max(self.last_ended_epoch, self.session[1])
            self.session = None
            self._stats.sessions_ended += 1
            if self.draining:  # recycled into draining: no more sessions here
                self.state = InstanceState.DRAINING
                return False
            self.state = InstanceState.READY  # recycled: the stub restarts at once
            return True
        if a is not None and self.session is None and self.state is InstanceState.READY:
            self.session = (a.session_id, a.epoch)
            self.state = InstanceState.RESERVED
            self._stats.assignments_taken += 1
        return False

    async def run(self, first_delay_s: float) -> None:
        """Heartbeat every interval (one at a time) until cancelled."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(first_delay_s)
        due = loop.time()
        while True:
            await self.heartbeat()
            due += self.interval_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = max(due, loop.time() - self.interval_s)  # far behind: do not burst to catch up


class AgentLoad:
    """N simulated agents sharing one HTTP connection pool (`connections` sockets:
    the control plane caps connections per peer address, and every simulated
    agent here has the same one)."""

    def __init__(
        self,
        base_url: str,
        agent_secret: str,
        identity: Identity,
        *,
        connections: int = 256,
        timeout_s: float = 5.0,
    ) -> None:
        self._base = base_url
        self._secret = agent_secret
        self._identity = identity
        self._timeout_s = timeout_s
        self._connections = connections
        self._http: aiohttp.ClientSession | None = None
        self.stats = LoadStats()
        self.agents: list[SimAgent] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> AgentLoad:
        connector = aiohttp.TCPConnector(limit=self._connections, force_close=False)
        self._http = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._http is not None:
            await self._http.close()

    def add(self, region: str, instances: list[tuple[str, str]]) -> None:
        assert self._http is not None, "use `async with AgentLoad(...)`"
        for iid, ip in instances:
            client = ControlPlaneClient(self._http, self._base, self._secret,
                                        timeout_s=self._timeout_s)  # fmt: skip
            self.agents.append(SimAgent(client, instance_id=iid, region=region, private_ip=ip,
                                        identity=self._identity, stats=self.stats))  # fmt: skip

    async def register_all(self, concurrency: int = 32) -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(agent: SimAgent) -> None:
            async with sem:
                await agent.register()

        await asyncio.gather(*(one(a) for a in self.agents if a.state is InstanceState.BOOTING))

    def start(self) -> None:
        """Every agent heartbeats from now on, phases spread over its interval."""
        for agent in self.agents:
            delay = random.uniform(0, agent.interval_s)
            self._tasks.append(asyncio.create_task(agent.run(delay)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def ready(self) -> int:
        return sum(1 for a in self.agents if a.state is InstanceState.READY and a.session is None)
