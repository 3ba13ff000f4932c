"""The simulated fleet of the live replay: every instance a moto group runs is a
simulated agent (simulators/agent_load.SimAgent) in this process.

It replaces the local stack's one-agent-process-per-instance fleet (a 2-core
machine cannot run 500 agent processes): the pool manager scales its moto
Auto Scaling group for real; an instance the group lists boots for the
scenario's (compressed) lead time, registers with its cloud-signed identity
document, heartbeats and takes assignments through the real agent API; an
instance the group no longer lists is stopped.

Players reach a simulated agent through the region's router, on the instance's
own loopback address (live_signal.py), or, with `signal_port` None, in-process
(`SimAgent.player_connected`): either way the agent checks the session and
epoch of the verified stream token and reports client_connected as the real
agent does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field

import aiohttp

from regional_stack.agent.control_plane_client import ControlPlaneClient, ControlPlaneError
from simulators.agent_load import Identity, LoadStats, SimAgent
from simulators.launch_day.live_signal import SignalEndpoint
from simulators.local_aws import aws_client
from simulators.local_stack.fleet import GROUP, Fleet

log = logging.getLogger("streamfleet.launch_day.fleet")
REGISTER_TRIES = 8


@dataclass
class SimInstance:
    region: str
    instance_id: str
    private_ip: str
    agent: SimAgent
    task: asyncio.Task[None]
    launched_at: float  # loop time the group first listed it (GPU time is paid from here)
    endpoint: SignalEndpoint | None = None


@dataclass
class SimFleet(Fleet):
    boot_s: float = 2.0  # lead time from launch to a registered, ready agent (wall seconds)
    boot_jitter: float = 0.2
    sims: dict[str, SimInstance] = field(default_factory=dict)
    stats: LoadStats = field(default_factory=LoadStats)
    # (region, launched, terminated) of instances gone (GPU time is paid in between).
    closed: list[tuple[str, float, float]] = field(default_factory=list)
    # Signalling on each instance's own address and this port, behind the router
    # (None: players reach the simulated agents in-process only).
    signal_port: int | None = None
    token_keys: dict[str, bytes] = field(default_factory=dict)
    _http: aiohttp.ClientSession | None = None
    _ips: dict[str, str] = field(default_factory=dict)

    def _group_ids(self, region: str) -> list[str]:
        autoscaling = aws_client("autoscaling", region, self.moto_url)
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
            "AutoScalingGroups"
        ]
        return [
            i["InstanceId"]
            for g in groups
            for i in g.get("Instances", [])
            if i.get("LifecycleState") in ("InService", "Pending")
        ]

    def _addresses(self, region: str, ids: list[str]) -> dict[str, str]:
        """Private IPs of instances not seen before (moto is slow to describe many)."""
        new = [i for i in ids if i not in self._ips]
        if new:
            ec2 = aws_client("ec2", region, self.moto_url)
            for r in ec2.describe_instances(InstanceIds=new)["Reservations"]:
                for inst in r["Instances"]:
                    self._ips[inst["InstanceId"]] = inst["PrivateIpAddress"]
        return {i: self._ips[i] for i in ids if i in self._ips}

    async def sync(self) -> list[str]:
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        loop = asyncio.get_running_loop()
        changes: list[str] = []
        for region in self.plan.regions:
            try:
                ids = await asyncio.to_thread(self._group_ids, region.name)
                wanted = await asyncio.to_thread(self._addresses, region.name, ids)
            except Exception as exc:  # moto briefly busy: next pass
                log.warning("listing %s instances failed: %s", region.name, exc)
                continue
            mine = {i for i, s in self.sims.items() if s.region == region.name}
            for iid in sorted(set(wanted) - mine):
                ip = wanted[iid]
                client = ControlPlaneClient(
                    self._http, self.plan.control_plane_url, self.plan.agent_secrets[region.name]
                )
                agent = SimAgent(
                    client, instance_id=iid, region=region.name, private_ip=ip,
                    identity=self._identity(region.name, ip), stats=self.stats,
                )  # fmt: skip
                delay = self.boot_s * (1 + random.uniform(-self.boot_jitter, self.boot_jitter))
                endpoint = (
                    SignalEndpoint(agent, self.token_keys, self.signal_port)
                    if self.signal_port is not None
                    else None
                )
                task = asyncio.create_task(self._live(agent, delay, endpoint))
                self.sims[iid] = SimInstance(
                    region.name, iid, ip, agent, task, loop.time(), endpoint
                )
                changes.append(f"{region.name}: instance {iid} booting as simulated agent on {ip}")
            for iid in sorted(mine - set(wanted)):
                await self._close(iid)
        return changes

    def _identity(self, region: str, ip: str) -> Identity:
        return lambda iid: self.signer.identity(iid, region, ip)

    async def _live(self, agent: SimAgent, boot_s: float, endpoint: SignalEndpoint | None) -> None:
        await asyncio.sleep(boot_s)
        if endpoint is not None:
            await endpoint.start()  # listening before it says it is ready
        for attempt in range(REGISTER_TRIES):
            try:
                await agent.register()
                break
            except ControlPlaneError:  # e.g. mid-failover: the instance keeps trying
                await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
        else:
            return  # never registered: the pool manager will see it as not ready
        await agent.run(random.uniform(0, agent.interval_s))

    async def _close(self, iid: str) -> None:
        sim = self.sims.pop(iid)
        sim.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sim.task
        if sim.endpoint is not None:
            await sim.endpoint.stop()
        self.closed.append((sim.region, sim.launched_at, asyncio.get_running_loop().time()))

    def agent(self, instance_id: str) -> SimAgent | None:
        sim = self.sims.get(instance_id)
        return sim.agent if sim is not None else None

    def paid_s(self, region: str, since: float, until: float) -> float:
        """Instance-seconds paid in [since, until] (loop times) in `region`."""
        spans = [(a, b) for r, a, b in self.closed if r == region]
        spans += [(s.launched_at, until) for s in self.sims.values() if s.region == region]
        return sum(max(0.0, min(b, until) - max(a, since)) for a, b in spans)

    def count(self, region: str) -> int:
        return sum(1 for s in self.sims.values() if s.region == region)

    async def aclose(self) -> None:
        for iid in list(self.sims):
            await self._close(iid)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def stop_all(self) -> None:
        """Synchronous stop (LocalStack.stop): cancel the agents' tasks."""
        for sim in self.sims.values():
            sim.task.cancel()
        self.sims.clear()

    def pids(self) -> list[int]:
        return []  # no processes: every simulated agent lives in this one
