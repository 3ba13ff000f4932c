"""Broker throughput: concurrent assign+end cycles vs. redis-benchmark EVALSHA.

Both run against the same fresh Redis in the same run, so the ratio holds on
a noisy machine. A cycle is what a session costs the broker: assign (create
+ reserve + bind), end (end + release), and the agent's "ready again" report.
Progress goes to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.redis_calls import counting
from control_plane import keys
from control_plane.broker import Broker
from control_plane.scripts import script_source
from streamfleet.lifecycle import EndReason
from streamfleet.localproc import free_port, start_redis

REGION = "eu-central-1"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# The baseline's call, both from redis-benchmark and from redis-py: the assign script
# against a region with no instances; after the session id: journal, claim ms, fresh ms.
BASELINE_SCRIPT = "region_reserve"
BASELINE_ARGS = ("", "90000", "15000")


def redis_benchmark_evalsha(port: int, requests: int) -> float:
    """redis-benchmark's EVALSHA rate for the assign script (region_reserve)."""
    sha = subprocess.run(
        ["redis-cli", "-p", str(port), "SCRIPT", "LOAD", script_source(BASELINE_SCRIPT)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    rkeys = keys.region_keys("bench-baseline")
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "50", "-n", str(requests),
         "--csv", "EVALSHA", sha, str(len(rkeys)), *rkeys, "sid-__rand_int__", *BASELINE_ARGS],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    row = next(line for line in out.splitlines() if line.startswith('"EVALSHA'))
    return float(row.split(",")[1].strip('"'))


async def client_evalsha(port: int, callers: int, seconds: float) -> float:
    """The same EVALSHA as the baseline, issued from Python through redis-py (the
    broker's client) by `callers` concurrent tasks: what this process can ask of
    Redis at all, before any broker logic. A cycle needs `redis_calls_per_cycle`
    of these, so this over that, over the baseline, is the ratio's ceiling here."""
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", max_connections=callers + 8)
    script = client.register_script(script_source(BASELINE_SCRIPT))
    rkeys = keys.region_keys("bench-client")
    deadline = time.perf_counter() + seconds

    async def caller(n: int) -> int:
        done = 0
        while time.perf_counter() < deadline:
            await script(rkeys, [f"sid-{n}-{done}", *BASELINE_ARGS])
            done += 1
        return done

    try:
        start = time.perf_counter()
        counts = await asyncio.gather(*(caller(n) for n in range(callers)))
        return sum(counts) / (time.perf_counter() - start)
    finally:
        await client.aclose()


async def broker_cycles(port: int, callers: int, seconds: float) -> dict[str, float]:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", max_connections=callers + 8)
    broker = Broker(client, [REGION])
    try:
        await client.flushall()
        for i in range(callers * 2):
            await broker.register_instance(
                REGION, f"i-{i}", f"127.11.{i // 250}.{i % 250 + 1}", ready=True
            )
        assign_ms: list[float] = []
        end_ms: list[float] = []
        deadline = time.perf_counter() + seconds

        async def caller(n: int) -> int:
            done = 0
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                placed = await broker.create_session(f"c{n}-{done}", [REGION])
                t1 = time.perf_counter()
                s = placed.session
                assert s.instance_id is not None, "bench pool ran dry"
                await broker.end_session(s.session_id, EndReason.CLIENT_ENDED)
                t2 = time.perf_counter()
                await broker.mark_ready(REGION, s.instance_id)  # the agent's reset
                assign_ms.append((t1 - t0) * 1000)
                end_ms.append((t2 - t1) * 1000)
                done += 1
            return done

        start = time.perf_counter()
        with counting(broker) as calls:
            counts = await asyncio.gather(*(caller(n) for n in range(callers)))
        elapsed = time.perf_counter() - start
        return {
            "cycles": sum(counts),
            "calls": calls[0],
            "elapsed": elapsed,
            "assign_p50": statistics.median(assign_ms),
            "assign_p99": percentile(assign_ms, 0.99),
            "end_p99": percentile(end_ms, 0.99),
        }
    finally:
        await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline-requests", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-bench-broker-") as tmp:
        port = free_port()
        server = start_redis(port, Path(tmp))
        try:
            log(
                f"redis-benchmark: EVALSHA region_reserve x {args.baseline_requests}, 50 connections"
            )
            baseline = redis_benchmark_evalsha(port, args.baseline_requests)
            log(f"  {baseline:,.0f} EVALSHA/s")
            log(
                f"broker: {args.callers} concurrent callers, assign+end+ready cycles for {args.seconds:.0f} s"
            )
            r = asyncio.run(broker_cycles(port, args.callers, args.seconds))
            log(f"redis-py: the same EVALSHA from this process, {args.callers} callers")
            from_python = asyncio.run(client_evalsha(port, args.callers, args.seconds))
            log(f"  {from_python:,.0f} EVALSHA/s")
        finally:
            server.stop()
    per_s = r["cycles"] / r["elapsed"]
    calls_per_cycle = r["calls"] / max(1, r["cycles"])
    log(f"  {per_s:,.0f} cycles/s")
    print(json.dumps({
        "bench": "broker",
        "assign_end_per_s": round(per_s, 1),
        "p50_ms": round(r["assign_p50"], 3),
        "p99_ms": round(r["assign_p99"], 3),
        "end_p99_ms": round(r["end_p99"], 3),
        "redis_evalsha_per_s": round(baseline, 1),
        "ratio_to_redis": round(per_s / baseline, 4),
        # Counted at the broker's one Redis seam (bench/redis_calls.py).
        "redis_calls_per_cycle": round(calls_per_cycle, 2),
        # The ceiling from the client alone: redis-py's EVALSHA rate over the calls a
        # cycle makes, against the same baseline (docs/design.md "Fleet scale").
        "client_evalsha_per_s": round(from_python, 1),
        "ratio_ceiling_for_the_calls": round(from_python / calls_per_cycle / baseline, 4),
        "share_of_ceiling": round(per_s / (from_python / calls_per_cycle), 3),
        "callers": args.callers,
        "seconds": args.seconds,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
