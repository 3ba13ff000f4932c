"""The store contract suite runs against a single Redis and a 3-node Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from control_plane.broker import Broker
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock
from control_plane.redis_client import connect_redis
from control_plane.settings import ControlPlaneSettings

REGIONS = ("eu-central-1", "eu-west-1", "us-east-1", "us-west-2")


async def make_client(request: pytest.FixtureRequest) -> Any:
    """The control plane's own client (control_plane/redis_client.py), so the whole
    contract runs through its health checks and script-safe retries."""
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        client: Any = connect_redis(
            ControlPlaneSettings(redis_url=cluster.url, redis_cluster=True)
        ).client
        await client.initialize()
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        return client
    server = request.getfixturevalue("redis_server")
    client = connect_redis(ControlPlaneSettings(redis_url=server.url)).client
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
