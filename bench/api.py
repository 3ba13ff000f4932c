"""Session API throughput: create+delete pairs against one control-plane process.

In the same run, the same wrk load against a no-op aiohttp server (the
baseline), and a steady ~1,000 requests/s run for the latency at that rate.
Load generator: wrk (C, Debian) with bench/api_wrk.lua, one thread, so the
client costs little CPU next to the server. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from control_plane.broker import Broker
from control_plane.settings import ControlPlaneSettings, default_regions
from streamfleet.localproc import ManagedProcess, free_port, port_open, start_redis
from streamfleet.tokens import b64url_encode

HERE = Path(__file__).parent
REGION = "eu-central-1"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wrk(url: str, seconds: int, connections: int, think_ms: int = 0) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(HERE / "api_wrk.lua"), url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
        env={**os.environ, "SF_THINK_MS": str(think_ms)},
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result: dict[str, Any] = json.loads(line[8:])
    return result


async def fill_pool(redis_url: str, instances: int) -> None:
    client = aioredis.Redis.from_url(redis_url, max_connections=64)
    broker = Broker(client, [r.name for r in default_regions()])
    try:
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                await broker.register_instance(
                    REGION, f"i-{i}", f"127.11.{i // 250}.{i % 250 + 1}", ready=True
                )

        await asyncio.gather(*(one(i) for i in range(instances)))
    finally:
        await client.aclose()


def start(
    name: str, argv: list[str], port: int, work: Path, env: dict[str, str] | None = None
) -> ManagedProcess:
    proc = ManagedProcess(name=name, argv=argv, log_path=work / f"{name}.log", env=env).start()
    proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=30)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--instances",
        type=int,
        default=10_000,
        help="ready instances (the design target of 10,000)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-bench-api-") as tmp:
        work = Path(tmp)
        redis_port = free_port()
        redis = start_redis(redis_port, work / "redis")
        procs: list[ManagedProcess] = [redis]
        try:
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            log(f"registering {args.instances:,} ready instances")
            asyncio.run(fill_pool(redis_url, args.instances))
            settings = ControlPlaneSettings(
                redis_url=redis_url,
                token_keys={"k1": b64url_encode(os.urandom(32))},  # type: ignore[dict-item]
                turn_secret="bench-turn",  # type: ignore[arg-type]
                agent_secrets={REGION: "bench-agent"},  # type: ignore[dict-item]
                admin_token="bench-admin",  # type: ignore[arg-type]
                rate_limit_per_minute=10_000_000,
                default_region_order=[REGION],
                cross_geography="never",
            )
            cp_port, noop_port = free_port(), free_port()
            env = {**os.environ, **settings.to_env(), "STREAMFLEET_HTTP_PORT": str(cp_port)}
            procs.append(
                start(
                    "control-plane",
                    [sys.executable, "-m", "streamfleet.cli", "control-plane"],
                    cp_port,
                    work,
                    env,
                )
            )
            procs.append(
                start(
                    "noop",
                    [sys.executable, str(HERE / "noop_server.py"), str(noop_port)],
                    noop_port,
                    work,
                )
            )
            cp_url, noop_url = f"http://127.0.0.1:{cp_port}", f"http://127.0.0.1:{noop_port}"
            log("warm-up (2 s each)")
            wrk(cp_url, 2, args.connections)
            wrk(noop_url, 2, args.connections)
            log(f"no-op baseline: {args.seconds} s, {args.connections} connections")
            noop = wrk(noop_url, args.seconds, args.connections)
            log(f"control plane: {args.seconds} s, {args.connections} connections")
            real = wrk(cp_url, args.seconds, args.connections)
            # Closed loop with think time: 30 connections x 1 request per (20 ms + latency)
            # is at most 1,500/s; the JSON reports the rate actually reached.
            log(
                "control plane at a steady rate near 1,000 requests/s (30 connections, 20 ms think time)"
            )
            steady = wrk(cp_url, args.seconds, 30, think_ms=20)
        finally:
            for proc in reversed(procs):
                proc.stop()
    pairs_per_s = real["deletes"] / real["seconds"]
    noop_per_s = noop["requests"] / noop["seconds"]
    print(json.dumps({
        "bench": "api",
        "create_delete_per_s": round(pairs_per_s, 1),
        "p50_ms": real["p50_ms"],
        "p99_ms": real["p99_ms"],
        "p99_ms_at_1000_rps": steady["p99_ms"],
        "steady_rps": round(steady["requests"] / steady["seconds"], 1),
        "noop_per_s": round(noop_per_s, 1),
        "ratio_to_noop": round(2 * pairs_per_s / noop_per_s, 3),
        "errors": real["errors"] + real["non2xx"],
        "load_generator": "wrk -t1 (C) + bench/api_wrk.lua",
        "connections": args.connections,
        "seconds": args.seconds,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
