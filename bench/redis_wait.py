"""What `WAIT 1` (a replica acknowledges) would add to a create: a small, bounded measurement.

On a loopback primary + replica (streamfleet/sentinel_group.py), times one
write script alone and the same script followed by `WAIT 1 <timeout>` on the
same connection (a pipeline), sequentially and with concurrent callers. A
create ends with one such write, so the difference is what WAIT would cost it.
The last line on stdout is one JSON object (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from streamfleet.localproc import free_port
from streamfleet.sentinel_group import start_sentinel_group

WRITE = "redis.call('HSET', KEYS[1], 'state', ARGV[1]); return redis.call('INCR', KEYS[2])"


async def _timed(calls: int, concurrency: int, one: Any) -> dict[str, float]:
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for i in range(n):
            start = time.perf_counter()
            await one(i)
            latencies.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "per_s": round(len(latencies) / wall),
    }


async def measure(port: int, password: str, calls: int, timeout_ms: int) -> dict[str, Any]:
    client = aioredis.Redis(port=port, password=password, max_connections=64)
    script = client.register_script(WRITE)
    acked: list[int] = []

    async def plain(i: int) -> None:
        await script([f"s:{i}", "n"], ["assigned"])

    async def waited(i: int) -> None:
        async with client.pipeline(transaction=False) as pipe:
            await script([f"s:{i}", "n"], ["assigned"], client=pipe)
            pipe.execute_command("WAIT", 1, timeout_ms)
            acked.append((await pipe.execute())[-1])

    out: dict[str, Any] = {}
    try:
        await plain(0)  # load the script
        for concurrency in (1, 32):
            out[f"plain_c{concurrency}"] = await _timed(calls, concurrency, plain)
            out[f"wait1_c{concurrency}"] = await _timed(calls, concurrency, waited)
    finally:
        await client.aclose()
    out["wait_acked_by_replica"] = f"{sum(1 for a in acked if a >= 1)}/{len(acked)}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="per variant (bounded)")
    parser.add_argument("--timeout-ms", type=int, default=100, help="WAIT's timeout")
    args = parser.parse_args()
    calls = min(args.calls, 20_000)
    password = "bench-wait"  # a throwaway loopback Redis
    with tempfile.TemporaryDirectory() as tmp:
        group = start_sentinel_group(
            Path(tmp), [free_port(), free_port()], [free_port() for _ in range(3)], password
        )
        try:
            result = asyncio.run(measure(group.node_ports[0], password, calls, args.timeout_ms))
        finally:
            group.stop()
    print(json.dumps({"bench": "redis_wait", "calls": calls, **result}))


if __name__ == "__main__":
    main()
