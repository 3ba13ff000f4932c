"""Three control-plane processes on one Redis, hammered at once: the invariants hold."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from control_plane.broker import Broker
from control_plane.broker_settings import BrokerSettings
from streamfleet.localproc import free_port
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import (
    ADMIN,
    plane_settings,
    register_attested,
    start_control_plane_process,
)
from tests.integration.broker.invariants import all_sessions, check_invariants, stranded

EU, EUW = "eu-central-1", "eu-west-1"


async def test_three_replicas_never_double_book(
    clean_redis: str, tmp_path: Path, cloud: Cloud
) -> None:
    settings = plane_settings(
        clean_redis, cloud, rate_limit_per_minute=100_000, reaper_interval_s=0.2
    )
    tokens: dict[str, str] = {}
    ports = [free_port() for _ in range(3)]
    procs = [start_control_plane_process(settings, port, tmp_path) for port in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    rng = random.Random(7)
    try:
        async with aiohttp.ClientSession() as http:

            async def post(path: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
                url = rng.choice(urls) + path
                async with http.post(
                    url, json=body, headers={"Authorization": f"Bearer {token}"}
                ) as r:
                    return r.status, await r.json(content_type=None)

            iids: dict[str, list[str]] = {EU: [], EUW: []}
            for region in (EU, EUW):
                for _ in range(15):  # registered through any replica
                    token, iid = await register_attested(http, rng.choice(urls), cloud, region)
                    tokens[iid] = token
                    iids[region].append(iid)
                    await post(
                        "/v1/agents/heartbeat",
                        {"instance_id": iid, "region": region, "state": "ready"},
                        tokens[iid],
                    )

            async def client(n: int) -> None:
                status, body = await post(
                    "/v1/sessions", {"client_id": f"c{n % 200}", "model": "m"}, ""
                )
                # 200 + ended: the same client's other tab deleted it mid-placement.
                assert status in (201, 202) or (status == 200 and body["state"] == "ended"), body
                if status == 200:
                    return
                if n % 3 == 0:  # some leave at once, through another replica
                    url = rng.choice(urls) + f"/v1/sessions/{body['session_id']}"
                    async with http.delete(
                        url, headers={"Authorization": f"Bearer {body['session_secret']}"}
                    ) as r:
                        assert r.status == 200

            async def agents() -> None:  # recycled instances come back, as agents do
                for _ in range(20):
                    for region in (EU, EUW):
                        for iid in iids[region]:
                            await post(
                                "/v1/agents/heartbeat",
                                {"instance_id": iid, "region": region, "state": "ready"},
                                tokens[iid],
                            )
                    await asyncio.sleep(0.05)

            await asyncio.gather(agents(), *(client(n) for n in range(400)))
            async with http.get(
                urls[0] + "/v1/pools", headers={"Authorization": f"Bearer {ADMIN}"}
            ) as r:
                pools = await r.json()
        redis = aioredis.Redis.from_url(clean_redis)
        broker = Broker(redis, [EU, EUW, "us-east-1", "us-west-2"])
        try:
            await check_invariants(broker)
            sessions = await all_sessions(broker)
            live = Counter(s.client_id for s in sessions if s.state.value != "ended")
            assert max(live.values()) == 1
            serving = sum(pools["regions"][r]["live_sessions"] for r in (EU, EUW))
            assert serving <= 30
        finally:
            await redis.aclose()
    finally:
        for proc in procs:
            proc.stop()
    for proc in procs:
        assert "Traceback" not in proc.log_tail(200), proc.log_tail(40)


async def test_a_replica_killed_mid_burst_strands_nobody(
    clean_redis: str, tmp_path: Path, cloud: Cloud
) -> None:
    """kill -9 of one of three replicas while a bounded burst of creates runs:
    whatever the dead process was in the middle of is repaired by the others
    within claim TTL + one reaper period: no session left queued in no queue,
    no instance or session leaked."""
    claim_ttl_s, reaper_s = 3.0, 0.2
    settings = plane_settings(
        clean_redis, cloud, rate_limit_per_minute=100_000, reaper_interval_s=reaper_s,
        broker=BrokerSettings(claim_ttl_s=claim_ttl_s, outbox_grace_s=0.5, placing_grace_s=1),
    )  # fmt: skip
    ports = [free_port() for _ in range(3)]
    procs = [start_control_plane_process(settings, port, tmp_path) for port in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    victim = procs[2]
    rng = random.Random(11)
    outcomes: Counter[str] = Counter()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            for _ in range(4):  # a few instances, so creates both reserve and queue
                token, iid = await register_attested(http, urls[0], cloud, EU)
                async with http.post(
                    urls[0] + "/v1/agents/heartbeat",
                    json={"instance_id": iid, "region": EU, "state": "ready"},
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    assert r.status == 200

            answered = asyncio.Event()
            by_victim = [0]

            async def create(n: int) -> None:
                base = rng.choice(urls)
                try:
                    async with http.post(
                        base + "/v1/sessions", json={"client_id": f"k{n}", "model": "m"}
                    ) as r:
                        outcomes[str(r.status)] += 1
                        if base == urls[2]:
                            by_victim[0] += 1
                except aiohttp.ClientError:
                    outcomes["failed"] += 1  # the client saw its request die with the replica
                if by_victim[0] >= 25:
                    answered.set()

            # The kill lands while the victim is busy with creates: once it has
            # answered 25 of its share (about 100), the rest are mid-flight.
            burst = [asyncio.create_task(create(n)) for n in range(300)]
            await asyncio.wait_for(answered.wait(), 60)
            os.kill(victim.pid, signal.SIGKILL)
            await asyncio.gather(*burst)
        assert outcomes["failed"] > 0, outcomes  # requests really died in flight
        assert set(outcomes) <= {"201", "202", "failed"}, outcomes

        redis = aioredis.Redis.from_url(clean_redis)
        broker = Broker(redis, [EU, EUW, "us-east-1", "us-west-2"])
        try:
            # The repair window, from the end of the burst (the last caller the
            # kill stopped was earlier): polled, never slept out.
            deadline = asyncio.get_running_loop().time() + claim_ttl_s + reaper_s + 6
            while True:
                left = await stranded(broker)
                try:
                    if not left:
                        await check_invariants(broker, settled=True)
                        break
                except AssertionError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    await check_invariants(broker, settled=True)
                    raise AssertionError(f"stranded after the repair window: {left}")
                await asyncio.sleep(0.2)
            sessions = await all_sessions(broker)
            assert len(sessions) >= outcomes["201"] + outcomes["202"]
        finally:
            await redis.aclose()
    finally:
        for proc in procs:
            proc.stop()
    for proc in procs[:2]:
        assert "Traceback" not in proc.log_tail(200), proc.log_tail(40)
