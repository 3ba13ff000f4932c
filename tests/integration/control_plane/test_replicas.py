"""Three control-plane processes on one Redis, hammered at once: the invariants hold."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from control_plane.broker import Broker
from streamfleet.localproc import free_port
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import (
    ADMIN,
    agent_secret,
    next_ip,
    plane_settings,
    start_control_plane_process,
)
from tests.integration.broker.invariants import all_sessions, check_invariants

EU, EUW = "eu-central-1", "eu-west-1"


async def test_three_replicas_never_double_book(
    clean_redis: str, tmp_path: Path, cloud: Cloud
) -> None:
    settings = plane_settings(
        clean_redis, cloud, rate_limit_per_minute=100_000, reaper_interval_s=0.2
    )
    nonce = "n" * 43
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
                for _ in range(15):
                    ip = next_ip(region)
                    iid = await asyncio.to_thread(cloud.launch, region, ip)
                    document, signature = cloud.identity(iid)
                    status, body = await post(
                        "/v1/agents/register",
                        {"instance_id": iid, "region": region, "private_ip": ip,
                         "identity_document": document, "identity_signature": signature,
                         "nonce": nonce},
                        agent_secret(region),
                    )  # fmt: skip
                    assert status == 200, body
                    tokens[iid] = body["agent_token"]
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
