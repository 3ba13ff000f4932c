"""What the session-API and fleet benchmarks share: a control plane whose agents attest.

One Redis, the local cloud (moto's EC2 + a simulated IMDS signer, in this
process), `count` instances launched in moto in the region's loopback /16 with
signed identity documents, and one real `streamfleet control-plane` process
configured with the signer's public key, an agent token key and moto as its
EC2. Simulated agents (simulators/agent_load.py) then register through the
agent API exactly as instances do. Also: CPU of a process from /proc, the
background pass times the control plane publishes on /metrics, percentiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from control_plane.settings import ControlPlaneSettings, default_regions
from simulators.cloud import LocalCloud, start_cloud
from streamfleet.edge import loop_factory
from streamfleet.localproc import (
    ManagedProcess,
    create_cluster,
    free_port,
    port_open,
    start_redis,
)
from streamfleet.tokens import b64url_encode
from streamfleet.wire import PoolsView

REGION = "eu-central-1"
AGENT_SECRET = "bench-agent-secret"
ADMIN_TOKEN = "bench-admin-token"
T = TypeVar("T")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuWindow:
    """CPU use of some processes over a window, in % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._t0 = time.monotonic()
        self._own0 = time.process_time()
        self._cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def percent(self) -> dict[str, float]:
        wall = time.monotonic() - self._t0
        out = {
            name: round(100 * (cpu_seconds(pid) - self._cpu0[name]) / wall, 1)
            for name, pid in self._pids.items()
        }
        out["generator"] = round(100 * (time.process_time() - self._own0) / wall, 1)
        return out


class BackgroundProbe:
    """A measuring loop run as a task of this process's event loop between
    `start()` and `stop()`; subclasses write `_run`."""

    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class LoopLag(BackgroundProbe):
    """How late this process's event loop wakes up (the load generator's own lag)."""

    def __init__(self, period_s: float = 0.05) -> None:
        self.period_s = period_s
        self.lag_ms: list[float] = []

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.period_s)
            self.lag_ms.append(max(0.0, (time.perf_counter() - t0 - self.period_s) * 1000))

    def start(self) -> None:
        self.lag_ms.clear()
        super().start()


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class PassWatcher(BackgroundProbe):
    """Every background pass the control plane reports on /metrics: the pass
    counter and the latest pass's time, polled more often than passes happen."""

    def __init__(self, http: aiohttp.ClientSession, url: str, period_s: float = 0.2) -> None:
        self._http, self._url, self._period_s = http, url + "/metrics", period_s
        self.pass_ms: list[float] = []
        self.missed = 0  # passes that ended between two polls and were not seen alone

    async def _poll(self) -> tuple[float, float] | None:
        async with self._http.get(self._url) as resp:
            text = await resp.text()
        count = _metric(text, "streamfleet_control_plane_background_pass_seconds_count")
        last = _metric(text, "streamfleet_control_plane_background_last_pass_seconds")
        return None if count is None or last is None else (count, last)

    async def _run(self) -> None:
        seen: tuple[float, float] | None = None
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                now = await self._poll()
                if now is not None and seen is not None and now[0] > seen[0]:
                    self.pass_ms.append(now[1] * 1000)
                    self.missed += int(now[0] - seen[0]) - 1
                seen = now
            await asyncio.sleep(self._period_s)


@dataclass
class Stack:
    url: str
    settings: ControlPlaneSettings
    cloud: LocalCloud
    redis: ManagedProcess
    control_plane: ManagedProcess
    instances: list[tuple[str, str]]  # (instance id, private IP), launched in moto
    shards: list[ManagedProcess] = field(default_factory=list)  # Cluster nodes, if any

    def identity(self, instance_id: str) -> tuple[str, str]:
        return self.cloud.identity(instance_id)

    def pids(self) -> dict[str, int]:
        """Processes whose CPU is measured; with a Cluster, each shard ("redis:<port>");
        with `workers`, each worker ("control_plane:<n>"; the parent serves nothing)."""
        workers = self.worker_pids()
        pids = (
            {f"control_plane:{n}": pid for n, pid in enumerate(workers)}
            if workers
            else {"control_plane": self.control_plane.pid}
        )
        pids["redis"] = self.redis.pid
        pids.update({shard.name: shard.pid for shard in self.shards})
        return pids

    def worker_pids(self) -> list[int]:
        """The control plane's worker processes (none when it runs one process)."""
        text = self.control_plane.log_path.read_text(errors="replace")[:4000]
        found = re.search(r"workers \(pids ([\d, ]+)\)", text)
        return [int(p) for p in found.group(1).split(",")] if found else []

    def event_loop_in_use(self) -> str:
        """What the control plane said it runs on (its first stdout line)."""
        text = self.control_plane.log_path.read_text(errors="replace")[:2000]
        return "uvloop" if "event loop uvloop" in text else "asyncio"


def bench_settings(
    redis_url: str, cloud: LocalCloud, *, event_loop: str, **overrides: Any
) -> ControlPlaneSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "event_loop": event_loop,
        "token_keys": {"k1": b64url_encode(secrets.token_bytes(32))},
        "turn_secret": "bench-turn-secret",
        "agent_secrets": {REGION: AGENT_SECRET},
        "agent_identity_keys": {REGION: cloud.public_pem()},
        "agent_token_key": b64url_encode(secrets.token_bytes(32)),
        "ec2_endpoint_url": cloud.describe_url,
        "admin_token": ADMIN_TOKEN,
        "rate_limit_per_minute": 10_000_000,
        "default_region_order": [REGION],
        "cross_geography": "never",
        # Every simulated agent, wrk and the session load share 127.0.0.1.
        "max_connections_per_ip": 4096,
        **overrides,
    }
    return ControlPlaneSettings(**values)


def region_prefix(region: str) -> str:
    """The first two octets of the region's loopback /16 ("127.11")."""
    cidr = next(r for r in default_regions() if r.name == region).private_cidrs[0]
    return ".".join(cidr.split(".")[:2])


@contextlib.contextmanager
def attested_stack(
    work: Path, *, instances: int, event_loop: str, cluster: bool = False, **overrides: Any
) -> Iterator[Stack]:
    """Redis (one node, or with `cluster` a 3-node Redis Cluster), the local cloud with
    `instances` launched, and the control plane process."""
    ports = [free_port(below=55536) for _ in range(3 if cluster else 1)]  # bus port: +10000
    shards = [start_redis(port, work / f"redis-{port}", cluster=cluster) for port in ports]
    procs: list[ManagedProcess] = list(shards)
    if cluster:
        create_cluster(ports)
        overrides["redis_cluster"] = True
    redis_port, redis = ports[0], shards[0]
    cloud = start_cloud(default_amis=False, describe_front=True)
    try:
        t0 = time.monotonic()
        launched = cloud.launch_many(REGION, region_prefix(REGION), instances)
        log(f"launched {len(launched):,} instances in moto ({time.monotonic() - t0:.1f} s)")
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        settings = bench_settings(redis_url, cloud, event_loop=event_loop, **overrides)
        port = free_port()
        env = {**os.environ, **settings.to_env(), "STREAMFLEET_HTTP_PORT": str(port)}
        cp = ManagedProcess(
            name="control-plane",
            argv=[sys.executable, "-m", "streamfleet.cli", "control-plane"],
            log_path=work / "control-plane.log",
            env=env,
        ).start()
        procs.append(cp)
        cp.wait_ready(lambda: port_open("127.0.0.1", port), timeout=30)
        yield Stack(
            f"http://127.0.0.1:{port}", settings, cloud, redis, cp, launched,
            shards if cluster else [],
        )  # fmt: skip
    finally:
        for proc in reversed(procs):
            proc.stop()
        cloud.stop()


async def wait_ready(
    http: aiohttp.ClientSession, url: str, region: str, count: int, timeout_s: float = 60
) -> int:
    """Until the control plane counts `count` ready instances in the region (an agent
    whose ready event failed gets there on its next heartbeat), or `timeout_s`:
    the ready count reached. A control plane that cannot keep up with its fleet
    never gets there; the benchmark goes on and reports it."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ready, deadline = 0, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url + "/v1/pools", headers=headers) as resp:
                view = PoolsView.model_validate_json(await resp.read())
            ready = view.regions[region].count("ready")
            if ready >= count:
                return ready
        await asyncio.sleep(0.5)
    log(f"only {ready:,} of {count:,} instances ready after {timeout_s:.0f} s; going on")
    return ready


def run(main: Coroutine[Any, Any, T], event_loop: str) -> T:
    """Run the load generator on the named event loop (uvloop keeps its own lag low)."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(main)
