"""The control plane's Redis client (control_plane/redis_client.py) against a real Redis:
a script whose reply is lost is never sent twice; reads and unsent commands are
retried through a restart; stale pooled connections never reach a caller."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from control_plane.broker.plumbing import ReplyLost
from control_plane.redis_client import RedisHandle, connect_redis
from streamfleet.localproc import free_port, start_redis
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import plane_settings

# Counts its runs, then keeps Redis busy for 0.6 s: longer than the client waits.
SLOW_SCRIPT = """
redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local start = t[1] * 1000 + math.floor(t[2] / 1000)
repeat
  t = redis.call('TIME')
until t[1] * 1000 + math.floor(t[2] / 1000) - start >= 600
return 1
"""


def handle(url: str, cloud: Cloud, **overrides: Any) -> RedisHandle:
    return connect_redis(plane_settings(url, cloud, **overrides))


async def test_a_script_whose_reply_is_lost_runs_once(redis_server: Any, cloud: Cloud) -> None:
    redis = handle(redis_server.url, cloud, redis_socket_timeout_s=0.2)
    key = f"runs-{time.monotonic_ns()}"
    try:
        script = redis.client.register_script(SLOW_SCRIPT)
        with pytest.raises(ReplyLost):
            await script([key], [])
        raw: Any = redis.client  # GET is not among the broker's commands
        async with asyncio.timeout(5):  # the script finishes; then count its runs
            while (runs := await raw.get(key)) is None:
                await asyncio.sleep(0.05)
        assert int(runs) == 1
    finally:
        await redis.aclose()


async def test_reads_and_scripts_go_through_a_restart(tmp_path: Path, cloud: Cloud) -> None:
    port = free_port()
    server = start_redis(port, tmp_path)
    redis = handle(f"redis://127.0.0.1:{port}/0", cloud)
    try:
        script = redis.client.register_script("return redis.call('INCR', KEYS[1])")
        # Fill the pool: many connections, all idle afterwards.
        await asyncio.gather(*(script(["n"], []) for _ in range(100)))
        # In a thread: the event loop runs on while Redis restarts, as in production.
        await asyncio.to_thread(server.stop)
        server = await asyncio.to_thread(start_redis, port, tmp_path)  # empty
        results = await asyncio.gather(
            *(script(["n"], []) for _ in range(100)),
            *(redis.client.hgetall("h") for _ in range(100)),
        )
        assert sorted(results[:100]) == list(range(1, 101))  # each ran exactly once
    finally:
        await redis.aclose()
        server.stop()
