"""Redis loses data: waiting users get back in line from the secret they hold
(docs/operations.md "Redis loses data", control_plane/broker/restore.py). A
queued session, or one assigned to an instance whose agent never learnt it,
exists only in Redis; its user's s2 secret carries what rebuilds it."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from control_plane import keys
from control_plane.api.context import SERVICES
from control_plane.broker.restore import rebuild_window_ms
from control_plane.broker_settings import BrokerSettings
from control_plane.session_secrets import SessionFacts
from streamfleet.tokens import b64url_decode, b64url_encode
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import ControlPlane, plane_settings, running_control_plane
from tests.integration.control_plane.test_redis_loss import EU, FRA, beat, epoch_of, forget

Users = list[tuple[str, dict[str, Any]]]
# One heartbeat period: how long a read waits before a session Redis forgot is
# rebuilt from its secret (its agent may still report it). Short here.
HEARTBEAT_S = 1.0


@pytest.fixture
async def cp(clean_redis: str, city_db: Path, cloud: Cloud) -> AsyncIterator[ControlPlane]:
    settings = plane_settings(
        clean_redis, cloud, geoip_db=city_db, trusted_proxies=["127.0.0.1/32"],
        broker=BrokerSettings(heartbeat_interval_s=HEARTBEAT_S),
    )  # fmt: skip
    async with running_control_plane(settings, cloud) as plane:
        yield plane


async def queued_users(cp: ControlPlane, count: int) -> Users:
    """`count` users waiting in EU, one after the other (each created in a later
    millisecond than the one before: creation time is their order)."""
    users: Users = []
    for n in range(count):
        started = int(time.time() * 1000)
        status, s = await cp.create(f"waiter-{n}", ip=FRA)
        assert status == 202 and s["position"] == n + 1, s
        users.append((f"waiter-{n}", s))
        while int(time.time() * 1000) <= started:  # next millisecond
            await asyncio.sleep(0.0005)
    return users


async def read(cp: ControlPlane, s: dict[str, Any]) -> tuple[int, Any]:
    status, view, _ = await cp.call(
        "GET", f"/v1/sessions/{s['session_id']}", token=s["session_secret"]
    )
    return status, view


async def session_keys(cp: ControlPlane) -> list[str]:
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:
        return [k.decode() async for k in redis.scan_iter(match=f"{keys.PREFIX}:{{c:*")]
    finally:
        await redis.aclose()


async def test_flushall_puts_twenty_waiting_users_back_in_line_in_order(
    cp: ControlPlane,
) -> None:
    users = await queued_users(cp, 20)
    await forget(cp)
    # Each user's next read puts them back (all at once, in whatever order they
    # come back) within one heartbeat period.
    started = time.monotonic()
    views = await asyncio.gather(*(read(cp, s) for _, s in reversed(users)))
    assert time.monotonic() - started < HEARTBEAT_S + 1.0
    assert all(status == 200 and view["state"] == "queued" for status, view in views), views
    # Then the line is the original one.
    for n, (_, s) in enumerate(users):
        status, view = await read(cp, s)
        assert status == 200 and view["position"] == n + 1, (n, view)
    # An instance comes (its agent registered again after the loss): served in order.
    iid = await cp.ready_instance(EU)
    for n, (_, s) in enumerate(users):
        _, view = await read(cp, s)
        assert view["state"] == "assigned", (n, view)
        for _, later in users[n + 1 :]:
            assert (await read(cp, later))[1]["state"] == "queued"
        epoch = epoch_of(view["stream"]["token"])
        ev = {"instance_id": iid, "region": EU, "session_id": s["session_id"], "epoch": epoch}
        assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
        status, ended, _ = await cp.call(
            "DELETE", f"/v1/sessions/{s['session_id']}", token=s["session_secret"]
        )
        assert status == 200 and ended["state"] == "ended"
        _, hb = await beat(cp, iid, "ready", max_epoch=epoch)
        assert hb["state"] in ("ready", "reserved"), hb


async def test_a_newcomer_after_the_loss_waits_behind_those_rebuilt(cp: ControlPlane) -> None:
    users = await queued_users(cp, 2)
    await forget(cp)
    status, late = await cp.create("latecomer", ip=FRA)
    assert status == 202 and late["position"] == 1
    for n, (_, s) in enumerate(users):
        assert (await read(cp, s))[1]["position"] == n + 1
    assert (await read(cp, late))[1]["position"] == 3


async def test_the_events_stream_shows_the_user_back_in_line(cp: ControlPlane) -> None:
    """The stream the web client follows: Redis loses the session under it; the
    user sees themselves queued again, then assigned, without doing anything."""
    (_, s), *_ = await queued_users(cp, 1)
    url = f"{cp.url}/v1/sessions/{s['session_id']}/events"
    seen: list[dict[str, Any]] = []
    async with cp.http.get(url, params={"secret": s["session_secret"]}) as resp:
        assert resp.status == 200

        async def next_view() -> dict[str, Any]:
            async with asyncio.timeout(10):
                while True:
                    line = (await resp.content.readline()).decode()
                    if line.startswith("data: "):
                        view: dict[str, Any] = json.loads(line[6:])
                        seen.append(view)
                        return view

        assert (await next_view())["state"] == "queued"
        await forget(cp)
        await cp.ready_instance(EU)
        while (view := await next_view())["state"] != "assigned":
            assert view["state"] == "queued", view
    assert seen[-1]["session_id"] == s["session_id"]


async def test_delete_after_the_loss_ends_it_without_requeueing(cp: ControlPlane) -> None:
    (_, s), *_ = await queued_users(cp, 1)
    await forget(cp)
    sid = s["session_id"]
    status, body, _ = await cp.call("DELETE", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert status == 200 and body == {"session_id": sid, "state": "ended",
                                      "end_reason": "client_ended"}  # fmt: skip
    # A read racing the DELETE (another tab) finds it ended, not back in line.
    status, view = await read(cp, s)
    assert status == 200 and view["state"] == "ended"
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:
        assert await redis.zcard(keys.region_key(EU, "queue")) == 0
    finally:
        await redis.aclose()


async def test_the_agents_report_wins_over_a_rebuild_from_the_secret(cp: ControlPlane) -> None:
    """The user's read came first (back in line); then the agent that streams it
    registers again: the session is live there, and leaves the queue."""
    iid = await cp.ready_instance(EU)
    _, rows, _ = await cp.call("GET", f"/v1/pools/{EU}/instances", token="test-admin-token")
    ip = next(r["private_ip"] for r in rows["instances"] if r["instance_id"] == iid)
    _, s = await cp.create("streamer", ip=FRA)
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    ev = {"instance_id": iid, "region": EU, "session_id": sid, "epoch": epoch}
    assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
    await forget(cp)
    status, view = await read(cp, s)
    assert status == 200 and view["state"] == "queued"  # no instance known yet
    served = {"session_id": sid, "epoch": epoch, "connected": True}
    status, reg = await cp.agent(
        "register", cp.register_body(EU, iid, ip, max_epoch=epoch, session=served)
    )
    assert status == 200 and reg["state"] == "streaming", reg
    status, view = await read(cp, s)
    assert view["state"] == "connected" and epoch_of(view["stream"]["token"]) == epoch
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:
        assert await redis.zcard(keys.region_key(EU, "queue")) == 0
    finally:
        await redis.aclose()


async def test_an_agent_that_reports_within_the_heartbeat_period_wins(
    cp: ControlPlane,
) -> None:
    """The user reads while its agent has not registered again yet: the read
    waits (never queues a streaming session), and answers it streaming."""
    iid = await cp.ready_instance(EU)
    _, rows, _ = await cp.call("GET", f"/v1/pools/{EU}/instances", token="test-admin-token")
    ip = next(r["private_ip"] for r in rows["instances"] if r["instance_id"] == iid)
    _, s = await cp.create("patient", ip=FRA)
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    ev = {"instance_id": iid, "region": EU, "session_id": sid, "epoch": epoch}
    assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
    await forget(cp)
    reading = asyncio.create_task(read(cp, s))
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:  # until the read has found it missing (and waits)
        async with asyncio.timeout(HEARTBEAT_S):
            while not await redis.exists(keys.missing_key(sid)):
                await asyncio.sleep(0.01)
    finally:
        await redis.aclose()
    assert not reading.done()
    served = {"session_id": sid, "epoch": epoch, "connected": True}
    status, reg = await cp.agent(
        "register", cp.register_body(EU, iid, ip, max_epoch=epoch, session=served)
    )
    assert status == 200 and reg["state"] == "streaming", reg
    status, view = await reading
    assert status == 200 and view["state"] == "connected", view
    assert epoch_of(view["stream"]["token"]) == epoch


async def test_lost_last_writes_no_404_for_an_assigned_user(cp: ControlPlane) -> None:
    """A failover lost the last writes: the session and its reservation are gone
    and the agent never heard of the assignment. The user's read puts it back:
    the instance, ready again, serves it at an epoch the agent has not seen."""
    iid = await cp.ready_instance(EU)
    _, s = await cp.create("late-writer", ip=FRA)
    assert s["state"] == "assigned"
    epoch = epoch_of(s["stream"]["token"])
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:  # what the promoted replica had: instance ready, counter before, no session
        await redis.hset(keys.region_key(EU, "state"), iid, "ready")
        await redis.hdel(keys.region_key(EU, "sess"), iid)
        await redis.zrem(keys.region_key(EU, "claims"), iid)
        await redis.zadd(keys.region_key(EU, "ready"), {iid: 1})
        await redis.hincrby(keys.region_key(EU, "epoch"), iid, -1)
        for key in keys.session_keys(s["session_id"]):
            await redis.delete(key)
    finally:
        await redis.aclose()
    status, view = await read(cp, s)
    assert status == 200 and view["state"] == "assigned", view
    assert epoch_of(view["stream"]["token"]) >= epoch
    _, hb = await beat(cp, iid, "ready", max_epoch=epoch - 1)
    assert hb["assignment"]["session_id"] == s["session_id"], hb


def forged(secret: str, **changes: Any) -> str:
    """The secret with its payload changed and the MAC kept."""
    _, payload, mac = secret.split(".")
    body = json.loads(zlib.decompress(b64url_decode(payload), -15))
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = packer.compress(json.dumps({**body, **changes}).encode()) + packer.flush()
    return f"s2.{b64url_encode(raw)}.{mac}"


async def test_a_forged_payload_creates_nothing(cp: ControlPlane) -> None:
    (_, s), *_ = await queued_users(cp, 1)
    await forget(cp)
    sid = s["session_id"]
    for secret in (forged(s["session_secret"], t=int(time.time() * 1000)),
                   forged(s["session_secret"], q=["us-east-1"]),
                   s["session_secret"][:-2] + "AA"):  # fmt: skip
        for method in ("GET", "DELETE"):
            status, problem, headers = await cp.call(method, f"/v1/sessions/{sid}", token=secret)
            assert status == 404 and headers["Content-Type"].startswith("application/problem+json")
            assert problem["field"] == "session_id", problem
        url = f"/v1/sessions/{sid}/events?secret={secret}"
        assert (await cp.call("GET", url))[0] == 404
    assert await session_keys(cp) == []


async def test_an_expired_payload_is_gone_and_creates_nothing(cp: ControlPlane) -> None:
    (_, s), *_ = await queued_users(cp, 1)
    await forget(cp)
    svc = cp.app[SERVICES]
    facts = svc.session_secrets.facts(s["session_id"], s["session_secret"])
    assert facts is not None
    old = dataclasses.replace(
        facts, created_ms=int(time.time() * 1000) - rebuild_window_ms(cp.settings.broker) - 1000
    )
    secret = svc.session_secrets.mint_session(old)
    sid = s["session_id"]
    for method in ("GET", "DELETE"):
        status, problem, headers = await cp.call(method, f"/v1/sessions/{sid}", token=secret)
        assert status == 410 and headers["Content-Type"].startswith("application/problem+json")
        assert problem["field"] == "session_secret", problem
    assert (await cp.call("GET", f"/v1/sessions/{sid}/events?secret={secret}"))[0] == 410
    assert await session_keys(cp) == []


async def test_a_secret_of_another_session_rebuilds_nothing(cp: ControlPlane) -> None:
    users = await queued_users(cp, 2)
    await forget(cp)
    (_, a), (_, b) = users
    status, _, _ = await cp.call(
        "GET", f"/v1/sessions/{a['session_id']}", token=b["session_secret"]
    )
    assert status == 404 and await session_keys(cp) == []


def test_the_forged_payloads_fail_on_their_mac_alone(cp: ControlPlane) -> None:
    """Guard for `forged`: signed with the key, its payload is one the control
    plane reads (so the 404s above come from the MAC, not the format)."""
    key = b64url_decode(cp.settings.agent_token_key.get_secret_value())
    subkey = hmac.new(key, b"streamfleet/session-secret/v2", hashlib.sha256).digest()
    svc = cp.app[SERVICES]
    f = SessionFacts("0" * 32 + "-" + "0" * 16, "c", 1, (EU,), (EU,), (EU,))
    signed = forged(svc.session_secrets.mint_session(f), t=2).rpartition(".")[0]
    mac = b64url_encode(hmac.new(subkey, signed.encode(), hashlib.sha256).digest())
    got = svc.session_secrets.facts(f.session_id, f"{signed}.{mac}")
    assert got == dataclasses.replace(f, created_ms=2)
