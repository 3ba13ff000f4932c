"""Fleet scale: N heartbeating agents plus a steady session load on one control plane.

Per fleet size, a fresh stack (bench/harness.py): Redis, the local cloud with
N instances launched in moto, and one `streamfleet control-plane` process. In
this one process, N simulated agents (simulators/agent_load.py), each attested
with its cloud-signed identity document and nonce, speak the agent API through
the real agent's client: heartbeats every interval the control plane gives (5
s: 2,000/s at 10,000 instances) with their own agent tokens, ready events
after each recycled session. Alongside, `--create-rate` creates per second,
open loop, each deleted `--hold` seconds after its answer.

Measured over `--seconds` per size: heartbeat p50/p99 and how many were late
(answered after the next was due) or failed; create p50/p99 and how many were
assigned (201) or queued (202); the control plane's background pass times (as
it publishes them on /metrics); CPU of the control plane, Redis and this
generator, and this generator's event-loop lag (so its share of a p99 shows).
Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from harness import (
    AGENT_SECRET,
    REGION,
    CpuWindow,
    LoopLag,
    PassWatcher,
    attested_stack,
    log,
    pct,
    run,
    wait_ready,
)

from simulators.agent_load import AgentLoad
from streamfleet.wire import CreateSessionRequest


@dataclass
class SessionStats:
    create_ms: list[float] = field(default_factory=list)
    delete_ms: list[float] = field(default_factory=list)
    assigned: int = 0
    queued: int = 0
    errors: int = 0


async def session_load(
    http: aiohttp.ClientSession, url: str, rate: float, seconds: float, hold_s: float
) -> SessionStats:
    """`rate` creates per second for `seconds` (open loop: each on its own
    schedule, whatever earlier ones take), each deleted `hold_s` after its answer."""
    stats = SessionStats()
    loop = asyncio.get_running_loop()

    async def one(n: int) -> None:
        body = CreateSessionRequest(client_id=f"fleet-client-{n}", model="roadster")
        t0 = time.perf_counter()
        try:
            async with http.post(url + "/v1/sessions", data=body.model_dump_json(),
                                 headers={"Content-Type": "application/json"}) as resp:  # fmt: skip
                data = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            stats.errors += 1
            return
        stats.create_ms.append((time.perf_counter() - t0) * 1000)
        if status not in (201, 202):
            stats.errors += 1
            return
        if status == 201:
            stats.assigned += 1
        else:
            stats.queued += 1
        await asyncio.sleep(hold_s)
        t1 = time.perf_counter()
        try:
            async with http.delete(
                f"{url}/v1/sessions/{data['session_id']}",
                headers={"Authorization": f"Bearer {data['session_secret']}"},
            ) as resp:
                await resp.read()
                if resp.status != 200:
                    stats.errors += 1
                    return
        except (aiohttp.ClientError, TimeoutError):
            stats.errors += 1
            return
        stats.delete_ms.append((time.perf_counter() - t1) * 1000)

    total = int(rate * seconds)
    start = loop.time()
    tasks = []
    for n in range(total):
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        tasks.append(asyncio.create_task(one(n)))
    async with asyncio.timeout(hold_s + 30):
        await asyncio.gather(*tasks)
    return stats


async def one_size(args: argparse.Namespace, instances: int, work: Path) -> dict[str, Any]:
    cluster = args.redis == "cluster"
    with attested_stack(
        work, instances=instances, event_loop=args.event_loop, cluster=cluster
    ) as stack:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            AgentLoad(stack.url, AGENT_SECRET, stack.identity) as agents,
        ):
            agents.add(REGION, stack.instances)
            t0 = time.monotonic()
            await agents.register_all()
            registration_s = time.monotonic() - t0
            log(f"{instances:,} agents registered through the agent API ({registration_s:.1f} s)")
            agents.start()
            ready_at_start = await wait_ready(http, stack.url, REGION, instances)
            interval = agents.agents[0].interval_s
            await asyncio.sleep(interval)  # every agent is in its heartbeat rhythm
            log(
                f"measuring {args.seconds:.0f} s: {instances:,} agents + {args.create_rate}/s creates"
            )
            agents.stats.reset()
            lag, passes = LoopLag(), PassWatcher(http, stack.url)
            lag.start()
            passes.start()
            cpu = CpuWindow(stack.pids())
            window_start = time.monotonic()
            sessions = await session_load(
                http, stack.url, args.create_rate, args.seconds, args.hold
            )
            used = cpu.percent()
            window_s = time.monotonic() - window_start
            await lag.stop()
            await passes.stop()
            hb = agents.stats
            hb_ms = list(hb.heartbeat_ms)
            heartbeat_errors = dict(hb.heartbeat_errors)
            agent_errors = hb.errors
            late, events = hb.heartbeats_late, hb.events
            loop_in_use = stack.event_loop_in_use()
    pass_ms = passes.pass_ms
    row = {
        "instances": instances,
        "ready_at_start": ready_at_start,
        "heartbeats": len(hb_ms),
        "heartbeats_per_s": round(len(hb_ms) / window_s, 1),
        "heartbeat_p50_ms": round(pct(hb_ms, 0.5), 2),
        "heartbeat_p99_ms": round(pct(hb_ms, 0.99), 2),
        "heartbeats_late": late,
        "heartbeat_errors": heartbeat_errors,
        "creates": len(sessions.create_ms),
        "creates_assigned": sessions.assigned,
        "creates_queued": sessions.queued,
        "create_p50_ms": round(pct(sessions.create_ms, 0.5), 2),
        "create_p99_ms": round(pct(sessions.create_ms, 0.99), 2),
        "delete_p99_ms": round(pct(sessions.delete_ms, 0.99), 2),
        "ready_events": events,
        "background_passes": len(pass_ms),
        "background_passes_unseen": passes.missed,  # ended between two scrapes
        "background_pass_median_ms": round(statistics.median(pass_ms), 1) if pass_ms else None,
        "background_pass_max_ms": round(max(pass_ms), 1) if pass_ms else None,
        "control_plane_cpu_pct": used["control_plane"],
        "redis_cpu_pct": round(sum(v for k, v in used.items() if k.startswith("redis:")), 1)
        if cluster
        else used["redis"],
        # With a Cluster: every shard's CPU; a region's keys share one hash slot, so
        # the busiest shard is the one a region's growth would saturate first.
        **(
            {
                "redis_shard_cpu_pct": {k: v for k, v in used.items() if k.startswith("redis:")},
                "busiest_shard_cpu_pct": max(v for k, v in used.items() if k.startswith("redis:")),
            }
            if cluster
            else {}
        ),
        "generator_cpu_pct": used["generator"],
        "generator_loop_lag_p99_ms": round(pct(lag.lag_ms, 0.99), 2),
        "generator_loop_lag_max_ms": round(max(lag.lag_ms, default=0.0), 2),
        "errors": agent_errors + sessions.errors,
        "registration_s": round(registration_s, 1),
        "heartbeat_interval_s": interval,
        "event_loop": loop_in_use,
    }
    log(json.dumps(row))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,3000,10000", help="fleet sizes, comma separated")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--create-rate", type=float, default=50.0, help="creates per second")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds before each delete")
    parser.add_argument(
        "--redis", choices=["single", "cluster"], default="single",
        help="one Redis, or a 3-node Redis Cluster (reports each shard's CPU)",
    )  # fmt: skip
    parser.add_argument("--event-loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="the control plane's and this generator's")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="sf-bench-fleet-") as tmp:
            rows.append(run(one_size(args, size, Path(tmp)), args.event_loop))
    print(json.dumps({
        "bench": "fleet",
        "sizes": rows,
        "seconds": args.seconds,
        "create_rate": args.create_rate,
        "hold_s": args.hold,
        "load_generator": "one process: simulators/agent_load.py (ControlPlaneClient) + aiohttp",
        "goals": {"heartbeat_p99_ms": 10, "create_p99_ms": 10, "control_plane_cpu_pct": 50},
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
