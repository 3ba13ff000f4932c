"""Redis restarts in the middle of work: scripts reload, nothing is double-booked."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis

from control_plane.broker import Broker
from control_plane.domain import StoreUnavailable
from control_plane.retry import with_redis_retry
from streamfleet.lifecycle import SessionState
from streamfleet.localproc import free_port, start_redis

from .invariants import all_sessions, check_invariants

EU, EUW = "eu-central-1", "eu-west-1"


async def test_restart_mid_burst(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis(port, tmp_path, persistent=True)
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", max_connections=256)
    broker = Broker(client, (EU, EUW))
    try:
        for octet, region in ((11, EU), (12, EUW)):
            for i in range(20):
                await broker.register_instance(
                    region, f"i-{region}-{i}", f"127.{octet}.0.{i + 1}", ready=True
                )
        first = [await broker.create_session(f"early-{i}", [EU, EUW]) for i in range(10)]
        assert all(p.assigned for p in first)

        failures: Counter[str] = Counter()

        async def client_call(i: int) -> None:
            try:
                await broker.create_session(f"burst-{i}", [EU, EUW])
            except StoreUnavailable:  # the adapter's word for a Redis connection error
                failures["connection"] += 1

        burst = [asyncio.create_task(client_call(i)) for i in range(300)]
        await asyncio.sleep(0)  # let the burst start before Redis goes away
        server.stop()
        server = start_redis(port, tmp_path, persistent=True)
        await asyncio.gather(*burst)
        # The loop was blocked while Redis restarted: in-flight calls really failed.
        assert failures["connection"] > 0

        # Every client whose call failed tries again: create is idempotent.
        await asyncio.gather(
            *(
                with_redis_retry(lambda i=i: broker.create_session(f"burst-{i}", [EU, EUW]))
                for i in range(300)
            )
        )
        sessions = await all_sessions(broker)
        states = Counter(s.state for s in sessions if s.client_id.startswith("burst-"))
        assert sum(states.values()) == 300
        assert states[SessionState.ASSIGNED] == 30 and states[SessionState.QUEUED] == 270
        assert len({(s.region, s.instance_id) for s in sessions if s.instance_id}) == 40
        await check_invariants(broker)
        # The script cache was empty after the restart; calls reloaded it.
        assert (await client.script_exists(broker.conn.scripts.sha("region_reserve")))[0]
    finally:
        await client.aclose()
        server.stop()
