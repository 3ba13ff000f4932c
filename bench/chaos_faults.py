"""The faults of the chaos run: each a small object with `inject` and `heal`.

A fault acts on a running ChaosStack, through processes and signals only (as
bad luck would), never through the code under test. `heal` returns once the
broken part is back (restarted by the stack's supervisor, or by the fault in
the role of an orchestrator); whether the *service* is normal again is
measured separately, from the outside.

Adding one: subclass Fault, set `name`, implement inject/heal (and
`unavailable` if the stack may lack what it needs), and list it in FAULTS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_stack import ChaosStack
from nginx_lua.process import http_ok
from simulators.local_stack.testing import alive, descendants
from streamfleet.localproc import port_open, redis_ping
from streamfleet.sentinel_group import current_primary, master_state, redis_cli


@dataclass
class Target:
    """What a fault aims at: the instance (and region) of a live, streamed session."""

    region: str
    private_ip: str


class FaultUnavailable(RuntimeError):
    pass


async def until(check: Any, what: str, timeout: float = 30.0) -> None:
    """Poll `check()` (sync, run in a thread) until true."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not back after {timeout:.0f} s")
        await asyncio.sleep(0.1)


def kill9(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def agent_health(stack: ChaosStack, ip: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(
            f"http://{ip}:{stack.plan.agent_port}/healthz", timeout=1
        ) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except (OSError, ValueError):
        return None


def agent_pid(stack: ChaosStack, ip: str) -> int:
    for inst in stack.fleet.instances.values():
        if inst.private_ip == ip and inst.process.alive():
            return inst.process.pid
    raise LookupError(f"no running agent on {ip}")


@dataclass
class Fault:
    name: str = ""
    hold_s: float = 0.0  # how long the part stays broken before heal (beyond its own restart)
    notes: dict[str, Any] = field(default_factory=dict)
    # Which stack it needs: "single" (Redis as `streamfleet up` runs it) or "sentinel".
    stack_kind = "single"
    # Users arriving all at once just before the injection (requests in flight when it hits).
    burst_users = 0

    def unavailable(self, stack: ChaosStack) -> str | None:
        """Why this fault cannot run on this stack, or None."""
        return None

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        raise NotImplementedError

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        raise NotImplementedError


class RedisRestart(Fault):
    """kill -9 Redis; the stack's supervisor starts it again, empty (no persistence,
    as `streamfleet up` runs it)."""

    def __init__(self) -> None:
        super().__init__(name="redis_restart")

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        proc = stack.core_process("redis:")
        self.notes["killed_pid"] = proc.pid
        kill9(proc.pid)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        port, password = stack.plan.redis_port, stack.plan.redis_password
        await until(
            lambda: port_open("127.0.0.1", port) and redis_ping(port, password), "redis", 30
        )


class ReplicaKill(Fault):
    """kill -9 one control-plane replica mid-burst; its orchestrator restarts it after hold_s."""

    burst_users = 12

    def __init__(self, hold_s: float = 3.0) -> None:
        super().__init__(name="replica_kill9", hold_s=hold_s)

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        replica = stack.replicas[0]
        assert replica.process is not None
        self.notes["killed_pid"] = replica.process.pid
        kill9(replica.process.pid)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        await asyncio.to_thread(stack.replicas[0].start)


class ControlPlanePause(Fault):
    """SIGSTOP every replica (the whole control plane freezes: a VM pause, a long
    GC, a stalled host) for longer than the claim TTL, then SIGCONT."""

    def __init__(self, hold_s: float) -> None:
        super().__init__(name="control_plane_sigstop", hold_s=hold_s)

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        for replica in stack.replicas:
            replica.signal(signal.SIGSTOP)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        for replica in stack.replicas:
            replica.signal(signal.SIGCONT)


class AgentKill(Fault):
    """The instance's OS dies: kill -9 its agent and its renderer. The fleet
    simulator reboots it (same instance, same address, its nonce file), so the
    agent registers again with its identity document."""

    def __init__(self) -> None:
        super().__init__(name="agent_kill9")

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        health = await asyncio.to_thread(agent_health, stack, target.private_ip)
        pid = agent_pid(stack, target.private_ip)
        self.notes.update(killed_pid=pid, instance_ip=target.private_ip)
        kill9(pid)
        renderer = (health or {}).get("renderer_pid")
        # The renderer runs in its own session; with the "OS" gone it goes too.
        if isinstance(renderer, int) and "renderer" in cmdline(renderer):
            kill9(renderer)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        old = self.notes["killed_pid"]

        def back() -> bool:
            try:
                pid = agent_pid(stack, target.private_ip)
            except LookupError:
                return False
            health = agent_health(stack, target.private_ip)
            return pid != old and health is not None and bool(health.get("registered"))

        await until(back, "agent", 60)


class RendererKill(Fault):
    """kill -9 the renderer of a streaming instance; its agent restarts it."""

    def __init__(self) -> None:
        super().__init__(name="renderer_kill9")

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        health = await asyncio.to_thread(agent_health, stack, target.private_ip)
        pid = (health or {}).get("renderer_pid")
        if not isinstance(pid, int) or "renderer" not in cmdline(pid):
            raise FaultUnavailable(f"no renderer pid on {target.private_ip}: {health}")
        self.notes.update(killed_pid=pid, instance_ip=target.private_ip)
        kill9(pid)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        old = self.notes["killed_pid"]

        def back() -> bool:
            health = agent_health(stack, target.private_ip) or {}
            return bool(health.get("renderer_up")) and health.get("renderer_pid") not in (
                None,
                old,
            )

        await until(back, "renderer", 30)


class _CoreKill(Fault):
    """kill -9 a core process of the stack (and its children: nginx's workers);
    the stack's supervisor restarts it."""

    def process_prefix(self, stack: ChaosStack, target: Target) -> str:
        raise NotImplementedError

    def ready(self, stack: ChaosStack, target: Target) -> bool:
        raise NotImplementedError

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        proc = stack.core_process(self.process_prefix(stack, target))
        children = descendants(proc.pid)
        self.notes.update(killed_pid=proc.pid, process=proc.name)
        kill9(proc.pid)
        for child in children:
            kill9(child)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        prefix, old = self.process_prefix(stack, target), self.notes["killed_pid"]

        def back() -> bool:
            try:
                proc = stack.core_process(prefix)
            except LookupError:
                return False
            return proc.pid != old and not alive(old) and self.ready(stack, target)

        await until(back, prefix, 30)


class CoturnKill(_CoreKill):
    def __init__(self) -> None:
        super().__init__(name="coturn_kill9")

    def _region(self, stack: ChaosStack, target: Target) -> Any:
        return next(r for r in stack.plan.regions if r.name == target.region)

    def process_prefix(self, stack: ChaosStack, target: Target) -> str:
        return f"coturn:{self._region(stack, target).turn_port}"

    def ready(self, stack: ChaosStack, target: Target) -> bool:
        return True  # UDP: the supervisor's start returned, coturn is listening


class RouterKill(_CoreKill):
    def __init__(self) -> None:
        super().__init__(name="router_nginx_kill9")

    def process_prefix(self, stack: ChaosStack, target: Target) -> str:
        return f"router:{target.region}"

    def ready(self, stack: ChaosStack, target: Target) -> bool:
        region = next(r for r in stack.plan.regions if r.name == target.region)
        return http_ok(f"{region.router_url}/healthz")


class SentinelFailover(Fault):
    """Redis Sentinel failover: kill -9 of the primary while users arrive; Sentinel
    promotes the replica after its down-after period, losing the writes it had not
    replicated. Runs on a second stack started with `streamfleet up --redis sentinel`
    (plan redis_mode="sentinel"), whose supervisor restarts the dead node only after
    the failover, as a replica of the new primary (streamfleet.sentinel_group.NodeRestart):
    restarted at once it would come back empty and still primary."""

    stack_kind = "sentinel"

    def __init__(self) -> None:
        super().__init__(name="sentinel_failover")

    def unavailable(self, stack: ChaosStack) -> str | None:
        if getattr(stack.plan, "redis_mode", "single") != "sentinel":
            return "not available: this stack runs no Redis Sentinel (`streamfleet up --redis sentinel`)"
        return None

    def _primary(self, stack: ChaosStack) -> int | None:
        plan: Any = stack.plan
        return current_primary(plan.sentinel_ports, plan.redis_password)

    def _replicas_in_sync(self, stack: ChaosStack) -> bool:
        plan: Any = stack.plan
        state = master_state(plan.sentinel_ports[0], plan.redis_password)
        return int(state.get("num-slaves", "0") or 0) >= 1

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        # Without a known replica the failover aborts (-failover-abort-no-good-slave).
        await until(lambda: self._replicas_in_sync(stack), "sentinel sees a replica", 30)
        primary = await asyncio.to_thread(self._primary, stack)
        if primary is None:
            raise FaultUnavailable("no sentinel names a primary")
        proc = stack.core_process(f"redis:{primary}")
        self.notes.update(old_primary=primary, killed_pid=proc.pid)
        kill9(proc.pid)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        old, password = self.notes["old_primary"], stack.plan.redis_password

        def promoted() -> bool:
            port = self._primary(stack)
            if port is None or port == old:
                return False
            self.notes["new_primary"] = port
            return redis_ping(port, password)

        await until(promoted, "sentinel failover", 40)
        # The supervisor then brings the old node back as a replica of the new primary.
        await until(
            lambda: (
                redis_ping(old, password)
                and "role:slave" in redis_cli(old, password, "INFO", "replication")
            ),
            "old primary back as a replica",
            40,
        )


class Mixed(Fault):
    """Several faults at once: all injected together, healed together."""

    def __init__(self, parts: list[Fault]) -> None:
        super().__init__(name="mixed:" + "+".join(p.name for p in parts))
        self.parts = parts
        self.hold_s = max((p.hold_s for p in parts), default=0.0)
        self.burst_users = max((p.burst_users for p in parts), default=0)

    def unavailable(self, stack: ChaosStack) -> str | None:
        reasons = [r for p in self.parts if (r := p.unavailable(stack))]
        return "; ".join(reasons) or None

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        for part in self.parts:
            await part.inject(stack, target)
        self.notes = {p.name: p.notes for p in self.parts}

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        results = await asyncio.gather(
            *(p.heal(stack, target) for p in self.parts), return_exceptions=True
        )
        errors = [f"{p.name}: {r}" for p, r in zip(self.parts, results, strict=True) if r]
        if errors:
            raise RuntimeError("; ".join(errors))


def all_faults(claim_ttl_s: float, reaper_s: float) -> list[Fault]:
    """One at a time, then mixed (fresh objects: a fault keeps notes of its run)."""
    return [
        RedisRestart(),
        SentinelFailover(),
        ReplicaKill(),
        ControlPlanePause(hold_s=claim_ttl_s + 2 * reaper_s + 2),
        AgentKill(),
        RendererKill(),
        CoturnKill(),
        RouterKill(),
        Mixed([RedisRestart(), ReplicaKill(), AgentKill(), CoturnKill(), RouterKill()]),
    ]


def by_name(names: list[str], claim_ttl_s: float, reaper_s: float) -> list[Fault]:
    known = {f.name.split(":")[0]: f for f in all_faults(claim_ttl_s, reaper_s)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in names]
