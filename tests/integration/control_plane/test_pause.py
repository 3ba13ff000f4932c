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
    agent_secret,
    next_ip,
    plane_settings,
    start_control_plane_process,
)

EU = "eu-central-1"


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
                ip = next_ip(EU)
                iid = await asyncio.to_thread(cloud.launch, EU, ip)
                document, signature = cloud.identity(iid)
                async with http.post(
                    url + "/v1/agents/register",
                    json={"instance_id": iid, "region": EU, "private_ip": ip,
                          "identity_document": document, "identity_signature": signature,
                          "nonce": "p" * 43},
                    headers={"Authorization": f"Bearer {agent_secret(EU)}"},
                ) as r:  # fmt: skip
                    body = await r.json()
                    assert r.status == 200, body
                tokens[iid] = body["agent_token"]
                beating.add(iid)  # heartbeats from its registration on, as agents do
                agents.append(asyncio.create_task(agent(iid)))

            await asyncio.sleep(1.5)  # steady state: every instance ready
            states = await redis.hgetall(keys.region_key(EU, "state"))
            assert set(states.values()) == {"ready"}, states
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(4.0)  # well past the 1.5 s heartbeat timeout
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            await asyncio.sleep(2.0)  # resumed: heartbeats flow again
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
