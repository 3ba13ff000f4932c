from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import (
    ControlPlane,
    geoip_path,
    plane_settings,
    running_control_plane,
)


@pytest.fixture(scope="session")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return geoip_path(tmp_path_factory.mktemp("geoip"))


@pytest.fixture
async def clean_redis(redis_server: Any) -> str:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    return str(redis_server.url)


@pytest.fixture
async def cp(clean_redis: str, city_db: Path, cloud: Cloud) -> AsyncIterator[ControlPlane]:
    settings = plane_settings(
        clean_redis,
        cloud,
        geoip_db=city_db,
        trusted_proxies=["127.0.0.1/32"],
        cors_origins=["https://shop.example"],
    )
    async with running_control_plane(settings, cloud) as plane:
        yield plane
