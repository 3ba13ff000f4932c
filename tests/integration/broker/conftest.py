"""The store contract suite runs against a single Redis and a 3-node Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from control_plane.broker import Broker
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock

REGIONS = ("eu-central-1", "eu-west-1", "us-east-1", "us-west-2")


async def make_client(request: pytest.FixtureRequest) -> Any:
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        client = RedisCluster.from_url(cluster.url, max_connections=512)
        await client.initialize()
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        return client
    server = request.getfixturevalue("redis_server")
    client = aioredis.Redis.from_url(server.url, max_connections=512)
    await client.flushall()
    return client


@pytest.fixture(params=["single", "cluster"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    client = await make_client(request)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings() -> BrokerSettings:
    return BrokerSettings(claim_ttl_s=90, reconnect_window_s=60, queue_timeout_s=600)


@pytest.fixture
def broker(redis_client: Any, clock: ManualClock, settings: BrokerSettings) -> Broker:
    return Broker(redis_client, REGIONS, settings, clock)
