"""Agent identity against a real control plane, Redis and moto: an agent acts
only as the instance the cloud says it is. Every hostile call is refused with
a problem naming the field and leaves Redis exactly as it was."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from simulators.geoip_db import ip_of
from simulators.imds import IdentitySigner
from tests.fixtures.control_plane import ControlPlane, agent_secret, next_ip

EU, EUW = "eu-central-1", "eu-west-1"
FRA, DUB = ip_of("frankfurt"), ip_of("dublin")


async def snapshot(redis: aioredis.Redis) -> dict[bytes, Any]:
    """Every key with its whole value: a refused call must change none of it. (The
    background pass's own bookkeeping, `:meta` and its leases under `:meta:`, changes
    on its own: when the region was last reaped; so does the counters' version mark
    `v`, written once by the first read of a region's counters, region_recount.)"""
    state: dict[bytes, Any] = {}
    for key in sorted(await redis.keys("*")):
        if b":meta:" in key or key.endswith(b":meta"):
            continue
        kind = (await redis.type(key)).decode()
        if kind == "string":
            state[key] = await redis.get(key)
        elif kind == "hash":
            state[key] = await redis.hgetall(key)
            if key.endswith(b":counts"):
                state[key].pop(b"v", None)
                if not state[key]:
                    del state[key]
        elif kind == "zset":
            state[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            state[key] = sorted(await redis.smembers(key))
        elif kind == "list":
            state[key] = await redis.lrange(key, 0, -1)
        else:
            state[key] = kind
    return state


@pytest.fixture
async def redis(cp: ControlPlane) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(cp.settings.redis_url)
    yield client
    await client.aclose()


async def refused_and_unchanged(
    redis: aioredis.Redis, call: Any, status: int | tuple[int, ...], field: str | None = None
) -> dict[str, Any]:
    before = await snapshot(redis)
    got, problem = await call
    assert got in ((status,) if isinstance(status, int) else status), problem
    assert problem["type"].startswith("https://") and problem["status"] == got
    if field is not None:
        assert problem.get("field") == field, problem
    assert await snapshot(redis) == before
    return dict(problem)


async def serving(cp: ControlPlane, region: str, client: str, ip: str) -> tuple[str, str, int]:
    """A ready instance that got a session: (instance id, session id, epoch)."""
    iid = await cp.ready_instance(region)
    status, view = await cp.create(client, ip=ip)
    assert status == 201 and view["region"] == region, view
    _, hb = await cp.agent("heartbeat", {"instance_id": iid, "region": region, "state": "ready"})
    return iid, view["session_id"], hb["assignment"]["epoch"]


async def test_a_correctly_attested_agent_registers_heartbeats_and_reports(
    cp: ControlPlane,
) -> None:
    iid, sid, epoch = await serving(cp, EU, "alice", FRA)
    ev = {"instance_id": iid, "region": EU, "session_id": sid, "epoch": epoch}
    assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
    status, body = await cp.agent(
        "events", {**ev, "type": "session_ended", "detail": {"reason": "idle"}}
    )
    assert status == 202 and body["state"] == "recycling"
    # A restarted agent re-registers with its own nonce and keeps its instance.
    iid_ip = (
        await cp.call(
            "GET", f"/v1/pools/{EU}/instances", token=cp.settings.admin_token.get_secret_value()
        )
    )[1]
    ip = next(i["private_ip"] for i in iid_ip["instances"] if i["instance_id"] == iid)
    assert (await cp.agent("register", cp.register_body(EU, iid, ip)))[0] == 200


async def test_hijack_by_re_registering_with_another_ip_is_refused(
    cp: ControlPlane, redis: aioredis.Redis
) -> None:
    iid = await cp.ready_instance(EU)
    # The instance's own signed document, another IP claimed: the document says otherwise.
    body = cp.register_body(EU, iid, "127.11.250.250")
    await refused_and_unchanged(redis, cp.agent("register", body), 403, "private_ip")
    # An attacker's own instance whose document names the victim's instance id: not signed.
    other, other_ip = cp.launch(EU)
    document, signature = cp.cloud.identity(other)
    forged = document.replace(other, iid)
    body = {**cp.register_body(EU, iid, other_ip), "identity_document": forged,
            "identity_signature": signature}  # fmt: skip
    await refused_and_unchanged(redis, cp.agent("register", body), 403, "identity_signature")


async def test_a_document_signed_by_anyone_but_the_cloud_is_refused(
    cp: ControlPlane, redis: aioredis.Redis
) -> None:
    iid, ip = cp.launch(EU)
    document, _ = cp.cloud.identity(iid)
    mallory = IdentitySigner()
    body = {**cp.register_body(EU, iid, ip), "identity_signature": mallory.sign(document)}
    await refused_and_unchanged(redis, cp.agent("register", body), 403, "identity_signature")


async def test_an_ip_of_another_region_is_refused(cp: ControlPlane, redis: aioredis.Redis) -> None:
    # The cloud really runs it in eu-central-1, but on an address of eu-west-1's range.
    iid, ip = cp.launch(EU, next_ip(EUW))
    body = cp.register_body(EU, iid, ip)
    problem = await refused_and_unchanged(redis, cp.agent("register", body), 403, "private_ip")
    assert "range" in problem["detail"]


async def test_an_instance_the_cloud_does_not_run_is_refused(
    cp: ControlPlane, redis: aioredis.Redis
) -> None:
    iid, ip = cp.launch(EU)
    await asyncio.to_thread(cp.cloud.terminate, EU, iid)
    body = cp.register_body(EU, iid, ip)
    await refused_and_unchanged(redis, cp.agent("register", body), 403, "instance_id")
    # Its document, presented as eu-west-1's: the region differs from the signed one.
    body = {**body, "region": EUW}
    await refused_and_unchanged(
        redis, cp.agent("register", body, token=agent_secret(EUW)), 403, "region"
    )


async def test_a_duplicate_ip_of_a_live_instance_is_refused(
    cp: ControlPlane, redis: aioredis.Redis
) -> None:
    first = await cp.ready_instance(EU)
    _, pools, _ = await cp.call(
        "GET", f"/v1/pools/{EU}/instances", token=cp.settings.admin_token.get_secret_value()
    )
    ip = next(i["private_ip"] for i in pools["instances"] if i["instance_id"] == first)
    # The cloud runs a second instance on the same address (another VPC of the account).
    ec2 = cp.cloud.ec2(EU)
    vpc = ec2.create_vpc(CidrBlock="127.11.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.11.0.0/16")["Subnet"]["SubnetId"]
    second = ec2.run_instances(
        ImageId=cp.cloud.image_id(EU), MinCount=1, MaxCount=1, SubnetId=subnet, PrivateIpAddress=ip
    )["Instances"][0]["InstanceId"]
    cp.cloud.signer.document(second, EU, ip)
    body = cp.register_body(EU, second, ip)
    await refused_and_unchanged(redis, cp.agent("register", body), 409, "private_ip")


async def test_a_replayed_registration_without_the_nonce_is_refused(
    cp: ControlPlane, redis: aioredis.Redis
) -> None:
    iid = await cp.ready_instance(EU)
    _, pools, _ = await cp.call(
        "GET", f"/v1/pools/{EU}/instances", token=cp.settings.admin_token.get_secret_value()
    )
    ip = next(i["private_ip"] for i in pools["instances"] if i["instance_id"] == iid)
    # The document and signature are copied (they never change); the nonce is not known.
    replay = {**cp.register_body(EU, iid, ip), "nonce": secrets.token_urlsafe(32)}
    await refused_and_unchanged(redis, cp.agent("register", replay), 403, "nonce")
    replay.pop("nonce")
    await refused_and_unchanged(redis, cp.agent("register", replay), 422, "nonce")


async def test_heartbeat_only_as_itself(cp: ControlPlane, redis: aioredis.Redis) -> None:
    victim, _, _ = await serving(cp, EU, "alice", FRA)
    attacker = await cp.ready_instance(EU)
    hb = {"instance_id": victim, "region": EU, "state": "ready"}
    token = cp.agent_tokens[attacker]
    await refused_and_unchanged(redis, cp.agent("heartbeat", hb, token=token), 403, "instance_id")
    # The region's shared secret is no agent credential any more.
    await refused_and_unchanged(redis, cp.agent("heartbeat", hb, token=agent_secret(EU)), 403)
    # Nor is a token of another region's instance, even naming its own id.
    other = await cp.ready_instance(EUW)
    body = {"instance_id": other, "region": EU, "state": "ready"}
    await refused_and_unchanged(
        redis, cp.agent("heartbeat", body, token=cp.agent_tokens[other]), 403, "region"
    )


async def test_events_only_for_the_session_the_instance_serves(
    cp: ControlPlane, redis: aioredis.Redis
) -> None:
    victim, sid, epoch = await serving(cp, EU, "alice", FRA)
    attacker = await cp.ready_instance(EU)
    foreign = await cp.ready_instance(EUW)
    ended = {"session_id": sid, "epoch": epoch, "type": "session_ended",
             "detail": {"reason": "idle"}}  # fmt: skip
    # The attacker's own token, the victim's session: not its session.
    for ev in (
        {**ended, "instance_id": attacker, "region": EU},
        {**ended, "instance_id": attacker, "region": EU, "type": "renderer_crashed"},
    ):
        await refused_and_unchanged(redis, cp.agent("events", ev), 403, "session_id")
    connected = {**ended, "instance_id": attacker, "region": EU, "type": "client_connected"}
    await refused_and_unchanged(redis, cp.agent("events", connected), (403, 409))
    # Another region's instance, its own token and region: not its session either.
    ev = {**ended, "instance_id": foreign, "region": EUW}
    await refused_and_unchanged(redis, cp.agent("events", ev), 403, "session_id")
    # Naming the victim in the body with the attacker's token: not its token.
    ev = {**ended, "instance_id": victim, "region": EU}
    await refused_and_unchanged(
        redis, cp.agent("events", ev, token=cp.agent_tokens[attacker]), 403, "instance_id"
    )
    # The victim's own report at a guessed epoch: stale, refused, nothing changes.
    ev = {**ended, "instance_id": victim, "region": EU, "epoch": epoch + 1}
    await refused_and_unchanged(redis, cp.agent("events", ev), 409, "epoch")
    # And the session is still live; the victim itself may end it.
    ev = {**ended, "instance_id": victim, "region": EU}
    assert (await cp.agent("events", ev))[0] == 202
