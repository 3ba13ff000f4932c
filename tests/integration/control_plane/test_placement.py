"""Placement through the real service: GeoIP, geography, fallback, relaxing, spoofing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simulators.geoip_db import ip_of
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import ControlPlane, plane_settings, running_control_plane

EU, EUW, USE, USW = "eu-central-1", "eu-west-1", "us-east-1", "us-west-2"


async def fill_all(cp: ControlPlane) -> None:
    for region in (EU, EUW, USE, USW):
        await cp.ready_instance(region)
    await keep_live(cp)


async def keep_live(cp: ControlPlane) -> None:
    """Heartbeat every instance again, as its agent would have meanwhile: launching and
    attesting them can outlast the liveness window on a loaded machine, and an instance
    that went quiet is (rightly) not placed."""
    for iid, region in cp.ready.items():
        await cp.heartbeat_ready(region, iid)


async def test_each_city_lands_in_its_nearest_region(cp: ControlPlane) -> None:
    await fill_all(cp)
    for city, region in (("frankfurt", EU), ("dublin", EUW), ("virginia", USE), ("seattle", USW)):
        status, body = await cp.create(f"visitor-{city}", ip=ip_of(city))
        assert status == 201 and body["region"] == region, city


async def test_unknown_and_unlocated_ips_get_the_default_order(cp: ControlPlane) -> None:
    await fill_all(cp)
    await cp.ready_instance(EU)
    await keep_live(cp)
    _, body = await cp.create("nowhere", ip="100.20.1.2")  # in the DB, no location
    assert body["region"] == EU
    _, body = await cp.create("private", ip="10.9.9.9")
    assert body["region"] == EU


async def test_eu_full_falls_back_in_eu_then_queues_then_relaxes_to_us(
    clean_redis: str, city_db: Path, cloud: Cloud
) -> None:
    settings = plane_settings(
        clean_redis,
        cloud,
        geoip_db=city_db,
        trusted_proxies=["127.0.0.1/32"],
        geography_relax_after_s=1.0,
    )
    async with running_control_plane(settings, cloud) as cp:
        await cp.ready_instance(EU)
        await cp.ready_instance(EUW)
        await cp.ready_instance(USE)
        await keep_live(cp)
        fra = ip_of("frankfurt")
        assert (await cp.create("a", ip=fra))[1]["region"] == EU
        assert (await cp.create("b", ip=fra))[1]["region"] == EUW
        status, waiting = await cp.create("c", ip=fra)
        assert status == 202  # the US instance is free, but not yet allowed
        path = f"/v1/sessions/{waiting['session_id']}"
        async with asyncio.timeout(10):
            while True:  # the background pass relaxes the policy after 1 s of waiting
                _, view, _ = await cp.call("GET", path, token=waiting["session_secret"])
                if view["state"] == "assigned":
                    break
                await asyncio.sleep(0.1)
        assert view["region"] == USE


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    clean_redis: str, city_db: Path, cloud: Cloud
) -> None:
    settings = plane_settings(clean_redis, cloud, geoip_db=city_db, default_region_order=[USW])
    async with running_control_plane(settings, cloud) as cp:
        await fill_all(cp)
        # The peer (127.0.0.1) is not a trusted proxy here: the header is ignored,
        # the peer is a loopback address with no location, so the default order wins.
        _, body = await cp.create("spoofer", ip=ip_of("frankfurt"))
        assert body["region"] == USW


async def test_client_latencies_override_distance(cp: ControlPlane) -> None:
    await fill_all(cp)
    _, body = await cp.create("gamer", ip=ip_of("frankfurt"), latencies_ms={EUW: 9.0, EU: 40.0})
    assert body["region"] == EUW
