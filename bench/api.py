"""Session API throughput: create+delete pairs against one control-plane process.

The pool is real and kept fresh: `--instances` instances run in the local
cloud (moto), each with a simulated agent (simulators/agent_load.py) that
registered through the agent API with its cloud-signed identity document and
heartbeats with its own agent token at the interval the control plane gives
(5 s by default), so its instance stays assignable. A deleted session's
instance is recycling until its agent hears of it on a heartbeat and reports
ready again, as a real agent does: a pool sustains about instances /
(interval / 2) assignments per second. Creates are told apart: 201 assigned
an instance, 202 queued; a queued create is not an assignment, and the ratio
counts assigned pairs only.

In the same run, the same wrk load against a no-op aiohttp server on the same
event loop (the baseline, measured first on the quiet machine), then the
control plane at full speed and at a steady ~1,000 requests/s for the latency
at that rate. Load generator: wrk (C, Debian) with bench/api_wrk.lua, one
thread. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from harness import (
    AGENT_SECRET,
    REGION,
    CpuWindow,
    attested_stack,
    log,
    pct,
    run,
    wait_ready,
)

from simulators.agent_load import AgentLoad
from streamfleet.localproc import ManagedProcess, free_port, port_open

HERE = Path(__file__).parent


async def wrk(url: str, seconds: int, connections: int, think_ms: int = 0) -> dict[str, Any]:
    """wrk as a child process, so this process's loop keeps the agents heartbeating."""
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(HERE / "api_wrk.lua"), url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SF_THINK_MS": str(think_ms)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()[-500:]}")
    line = next(x for x in out.decode().splitlines() if x.startswith("WRKJSON "))
    result: dict[str, Any] = json.loads(line[8:])
    return result


def noop_baseline(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    port = free_port()
    proc = ManagedProcess(
        name="noop",
        argv=[sys.executable, str(HERE / "noop_server.py"), str(port), args.event_loop],
        log_path=work / "noop.log",
    ).start()
    try:
        proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=30)
        url = f"http://127.0.0.1:{port}"
        log(f"no-op baseline ({args.event_loop}): warm-up 2 s, then {args.seconds} s")
        asyncio.run(wrk(url, 2, args.connections))
        return asyncio.run(wrk(url, args.seconds, args.connections))
    finally:
        proc.stop()


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with attested_stack(
        work, instances=args.instances, event_loop=args.event_loop, workers=args.workers
    ) as stack:
        async with (
            aiohttp.ClientSession() as http,
            AgentLoad(stack.url, AGENT_SECRET, stack.identity) as agents,
        ):
            agents.add(REGION, stack.instances)
            log(f"registering {args.instances:,} attested agents through the agent API")
            await agents.register_all()
            agents.start()
            ready_at_start = await wait_ready(http, stack.url, REGION, args.instances)
            interval = agents.agents[0].interval_s
            log(f"control plane ({stack.event_loop_in_use()}): warm-up 2 s")
            await wrk(stack.url, 2, args.connections)
            await asyncio.sleep(interval)  # every recycled instance heard of its end
            log(f"control plane: {args.seconds} s, {args.connections} connections")
            agents.stats.reset()
            cpu = CpuWindow(stack.pids())
            window_start = time.monotonic()
            real = await wrk(stack.url, args.seconds, args.connections)
            used = cpu.percent()
            if args.workers > 1:  # the workers together, beside each one's share
                used["control_plane"] = round(
                    sum(v for k, v in used.items() if k.startswith("control_plane:")), 1
                )
            window_s = time.monotonic() - window_start
            hb = agents.stats
            hb_ms, hb_late, hb_errors, events = (
                list(hb.heartbeat_ms),
                hb.heartbeats_late,
                hb.errors,
                hb.events,
            )
            await asyncio.sleep(interval)
            # Closed loop with think time: 30 connections x 1 request per (20 ms +
            # latency) is at most 1,500/s; the JSON reports the rate actually reached.
            log(
                "control plane at a steady rate near 1,000 requests/s (30 connections, 20 ms think)"
            )
            steady = await wrk(stack.url, args.seconds, 30, think_ms=20)
            loop_in_use = stack.event_loop_in_use()
    return {
        "real": real, "steady": steady, "cpu": used, "interval": interval,
        "hb_ms": hb_ms, "hb_late": hb_late, "agent_errors": hb_errors, "events": events,
        "event_loop": loop_in_use, "ready_at_start": ready_at_start, "window_s": window_s,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--instances",
        type=int,
        default=3000,
        help="attested, heartbeating instances (3,000 sustain ~1,200 assignments/s at 5 s)",
    )
    parser.add_argument("--event-loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument(
        "--workers", type=int, default=1, help="control-plane processes on the port (SO_REUSEPORT)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-bench-api-") as tmp:
        work = Path(tmp)
        noop = noop_baseline(args, work)
        # The generator (agents, wrk's parent) on plain asyncio whatever the control
        # plane runs: under uvloop its loop once stopped waking after a wrk child
        # exited (timers and all), and it is light here (wrk makes the load).
        m = run(measure(args, work), "asyncio")
    real, steady, secs = m["real"], m["steady"], m["real"]["seconds"]
    noop_per_s = noop["requests"] / noop["seconds"]
    assigned_pairs_per_s = real["assigned_deletes"] / secs
    print(json.dumps({
        "bench": "api",
        "event_loop": m["event_loop"],
        "assigned_pairs_per_s": round(assigned_pairs_per_s, 1),
        "create_delete_per_s": round(real["deletes"] / secs, 1),
        "assigned_pairs": real["assigned_deletes"],
        "creates_assigned": real["assigned"],
        "creates_queued": real["queued"],
        "p50_ms": real["p50_ms"],
        "p99_ms": real["p99_ms"],
        "noop_per_s": round(noop_per_s, 1),
        "ratio_to_noop": round(2 * assigned_pairs_per_s / noop_per_s, 3),
        "p99_ms_at_1000_rps": steady["p99_ms"],
        "steady_rps": round(steady["requests"] / steady["seconds"], 1),
        "steady_assigned": steady["assigned"],
        "steady_queued": steady["queued"],
        "errors": real["errors"] + real["non2xx"] + steady["errors"] + steady["non2xx"],
        "socket_errors": real["socket_errors"] + steady["socket_errors"],  # wrk: timeouts etc.
        "instances": args.instances,
        "ready_at_start": m["ready_at_start"],
        "heartbeat_interval_s": m["interval"],
        "heartbeats_per_s": round(len(m["hb_ms"]) / m["window_s"], 1),
        "heartbeat_p99_ms": round(pct(m["hb_ms"], 0.99), 2),
        "heartbeats_late": m["hb_late"],
        "ready_events_per_s": round(m["events"] / m["window_s"], 1),
        "agent_errors": m["agent_errors"],
        "control_plane_cpu_pct": m["cpu"]["control_plane"],
        "redis_cpu_pct": m["cpu"]["redis"],
        "generator_cpu_pct": m["cpu"]["generator"],
        "load_generator": "wrk -t1 (C) + bench/api_wrk.lua; agents: simulators/agent_load.py",
        "connections": args.connections,
        "seconds": args.seconds,
        "workers": args.workers,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
