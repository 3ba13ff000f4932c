"""A real control-plane process stopped (SIGSTOP) for longer than the heartbeat
timeout does not declare its live instances lost when it resumes; an instance
that really went silent is still declared lost afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from control_plane import keys
from control_plane.broker_settings import BrokerSettings
from streamfleet.localproc import free_port
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import (
    plane_settings,
    register_attested,
    start_control_plane_process,
)

EU = "eu-central-1"


async def redis_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def until_every_instance_ready(redis: aioredis.Redis, count: int) -> None:
    """Readiness poll: the steady state the pause is measured against."""
    states: dict[str, str] = {}
    for _ in range(100):  # 10 s bound
        states = await redis.hgetall(keys.region_key(EU, "state"))
        if len(states) == count and set(states.values()) == {"ready"}:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"instances never all ready: {states}")


async def until_reaper_passes_after(redis: aioredis.Redis, since_ms: int, passes: int) -> None:
    """Wait until the region has been reaped `passes` times after `since_ms` (the
    reaper stamps `reaped_ms` on the region's meta hash every pass)."""
    seen: set[int] = set()
    for _ in range(200):  # 10 s bound
        stamp = await redis.hget(keys.region_key(EU, "meta"), "reaped_ms")
        if stamp is not None and int(stamp) > since_ms:
            seen.add(int(stamp))
            if len(seen) >= passes:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the reaper did not run {passes} times after the resume")


async def test_sigstop_past_the_heartbeat_timeout_loses_no_live_instance(
    clean_redis: str, tmp_path: Path, cloud: Cloud
) -> None:
    broker = BrokerSettings(heartbeat_interval_s=0.5, missed_heartbeats=3, watch_gap_s=0.5)
    settings = plane_settings(clean_redis, cloud, reaper_interval_s=0.1, broker=broker)
    port = free_port()
    proc = start_control_plane_process(settings, port, tmp_path)
    url = f"http://127.0.0.1:{port}"
    redis = aioredis.Redis.from_url(clean_redis, decode_responses=True)
    seen_lost: set[str] = set()
    try:
        async with aiohttp.ClientSession() as http:
            tokens: dict[str, str] = {}
            beating: set[str] = set()

            async def agent(iid: str) -> None:  # heartbeats every 0.2 s, bounded
                for _ in range(100):
                    if iid in beating:
                        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                            async with http.post(
                                url + "/v1/agents/heartbeat",
                                json={"instance_id": iid, "region": EU, "state": "ready"},
                                headers={"Authorization": f"Bearer {tokens[iid]}"},
                                timeout=aiohttp.ClientTimeout(total=0.5),
                            ) as r:
                                await r.read()
                    await asyncio.sleep(0.2)

            async def watch() -> None:  # what Redis says, every 50 ms
                for _ in range(600):
                    states = await redis.hgetall(keys.region_key(EU, "state"))
                    seen_lost.update(i for i, s in states.items() if s == "lost")
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch())
            agents = []
            for _ in range(3):
                token, iid = await register_attested(http, url, cloud, EU)
                tokens[iid] = token
                beating.add(iid)  # heartbeats from its registration on, as agents do
                agents.append(asyncio.create_task(agent(iid)))

            await until_every_instance_ready(redis, len(tokens))
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(4.0)  # well past the 1.5 s heartbeat timeout
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            # Resumed: the paused process's own reaper runs (several passes after
            # the resume) — that is where a pause-unsafe reaper would mark them lost.
            await until_reaper_passes_after(redis, await redis_ms(redis), passes=5)
            assert not seen_lost, f"live instances declared lost after the pause: {seen_lost}"
            # Detection still works: one agent really stops.
            silent = sorted(tokens)[0]
            beating.discard(silent)
            deadline = asyncio.get_running_loop().time() + broker.lost_after_s + 3
            while silent not in seen_lost:
                assert asyncio.get_running_loop().time() < deadline, "never declared lost"
                await asyncio.sleep(0.1)
            assert seen_lost == {silent}
            watcher.cancel()
            for task in agents:
                task.cancel()
            await asyncio.gather(watcher, *agents, return_exceptions=True)
    finally:
        await redis.aclose()
        proc.stop()
    assert "Traceback" not in proc.log_tail(200), proc.log_tail(40)
