"""Redis loses data: fencing and live sessions survive from what the agents
report (docs/operations.md "Redis loses data"). The agent here is the test,
speaking the agent API as the real one does (tests/integration/agent/
test_redis_loss.py runs the real agent and player)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from control_plane import keys
from simulators.geoip_db import ip_of
from streamfleet.tokens import b64url_decode
from tests.fixtures.control_plane import ADMIN, ControlPlane

EU = "eu-central-1"
FRA = ip_of("frankfurt")


def epoch_of(token: str) -> int:
    return int(b64url_decode(token.split(".")[2]).decode().split("|")[3])


async def forget(cp: ControlPlane, pattern: str | None = None) -> None:
    """FLUSHDB (a restart without persistence), or only the keys matching `pattern`."""
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:
        if pattern is None:
            await redis.flushdb()
        else:
            async for key in redis.scan_iter(match=pattern):
                await redis.delete(key)
    finally:
        await redis.aclose()


async def streaming(cp: ControlPlane, client: str) -> tuple[str, str, dict[str, Any]]:
    """An instance streaming a session: (instance id, its ip, the create answer)."""
    iid, ip = await cp_ready(cp)
    status, s = await cp.create(client, ip=FRA)
    assert status == 201, s
    ev = {"instance_id": iid, "region": EU, "session_id": s["session_id"],
          "epoch": epoch_of(s["stream"]["token"])}  # fmt: skip
    assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
    return iid, ip, s


async def cp_ready(cp: ControlPlane) -> tuple[str, str]:
    iid = await cp.ready_instance(EU)
    _, rows, _ = await cp.call("GET", f"/v1/pools/{EU}/instances", token=ADMIN)
    ip = next(r["private_ip"] for r in rows["instances"] if r["instance_id"] == iid)
    return iid, ip


async def beat(cp: ControlPlane, iid: str, state: str, **fields: Any) -> tuple[int, Any]:
    return await cp.agent("heartbeat", {"instance_id": iid, "region": EU, "state": state, **fields})


async def test_live_session_is_rebuilt_when_its_agent_registers_again(cp: ControlPlane) -> None:
    iid, ip, s = await streaming(cp, "alice")
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    await forget(cp)
    # The agent's next heartbeat: 404, so it registers again, saying what it serves.
    status, _ = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert status == 404
    served = {"session_id": sid, "epoch": epoch, "connected": True}
    status, reg = await cp.agent(
        "register", cp.register_body(EU, iid, ip, max_epoch=epoch, session=served)
    )
    assert status == 200 and reg["state"] == "streaming", reg

    # The user reads it with the secret they hold: same stream, same epoch.
    status, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert status == 200 and view["state"] == "connected", view
    assert view["region"] == EU and view["stream"]["url"] == s["stream"]["url"]
    assert epoch_of(view["stream"]["token"]) == epoch
    # A wrong secret, or another session's, still reads nothing.
    assert (await cp.call("GET", f"/v1/sessions/{sid}", token="s1.AAAA"))[0] == 404

    # The heartbeat confirms the assignment: nothing tells the agent to end it.
    status, hb = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert status == 200 and hb["state"] == "streaming" and hb["commands"] == []
    assert hb["assignment"]["session_id"] == sid and hb["assignment"]["epoch"] == epoch

    # The user ends it; the agent is told; the next assignment is above the old epoch.
    status, ended, _ = await cp.call("DELETE", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert status == 200 and ended["state"] == "ended"
    _, hb = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert hb["commands"] == ["end_session"] and hb["assignment"] is None
    _, hb = await beat(cp, iid, "ready", max_epoch=epoch)
    assert hb["state"] == "ready"
    status, nxt = await cp.create("bob", ip=FRA)
    assert status == 201 and epoch_of(nxt["stream"]["token"]) == epoch + 1


async def test_assigned_session_is_rebuilt_with_its_claim(cp: ControlPlane) -> None:
    iid, ip = await cp_ready(cp)
    _, s = await cp.create("carol", ip=FRA)
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    await forget(cp)
    served = {"session_id": sid, "epoch": epoch, "connected": False}
    status, reg = await cp.agent(
        "register", cp.register_body(EU, iid, ip, max_epoch=epoch, session=served)
    )
    assert status == 200 and reg["state"] == "reserved"
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert view["state"] == "assigned" and view["claim_expires_at"]
    # The player connects as usual.
    ev = {"instance_id": iid, "region": EU, "session_id": sid, "epoch": epoch}
    assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert view["state"] == "connected"


async def test_only_the_regions_keys_lost(cp: ControlPlane) -> None:
    """A partial loss (one Cluster slot's node replaced): the session hash survived."""
    iid, ip, s = await streaming(cp, "dave")
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    await forget(cp, f"{keys.PREFIX}:{keys.region_tag(EU)}:*")
    status, _ = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert status == 404
    served = {"session_id": sid, "epoch": epoch, "connected": True}
    status, reg = await cp.agent(
        "register", cp.register_body(EU, iid, ip, max_epoch=epoch, session=served)
    )
    assert status == 200 and reg["state"] == "streaming"
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert view["state"] == "connected" and epoch_of(view["stream"]["token"]) == epoch


async def test_an_ended_session_is_never_brought_back(cp: ControlPlane) -> None:
    """No data lost: the agent reports a session the control plane ended (it has
    not heard yet); the epoch counter says so, and the session stays ended."""
    iid, ip, s = await streaming(cp, "erin")
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    await cp.call("DELETE", f"/v1/sessions/{sid}", token=s["session_secret"])
    _, hb = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert hb["commands"] == ["end_session"] and hb["state"] == "recycling"
    # Nor by a registration (the agent's link restarted) naming it.
    served = {"session_id": sid, "epoch": epoch, "connected": True}
    status, reg = await cp.agent(
        "register", cp.register_body(EU, iid, ip, max_epoch=epoch, session=served)
    )
    assert status == 200 and reg["state"] == "recycling"
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert view["state"] == "ended" and view["end_reason"] == "client_ended"


async def test_epochs_resume_above_what_the_agent_was_assigned(cp: ControlPlane) -> None:
    iid, ip = await cp_ready(cp)
    await forget(cp)
    status, reg = await cp.agent("register", cp.register_body(EU, iid, ip, max_epoch=41))
    assert status == 200 and reg["state"] == "booting"
    _, hb = await beat(cp, iid, "ready", max_epoch=41)
    assert hb["state"] == "ready"
    _, s = await cp.create("frank", ip=FRA)
    assert epoch_of(s["stream"]["token"]) == 42
    # A heartbeat raises the counter too (Redis lost the last writes, not the instance).
    sid = s["session_id"]
    await cp.call("DELETE", f"/v1/sessions/{sid}", token=s["session_secret"])
    _, hb = await beat(cp, iid, "ready", max_epoch=60)
    assert hb["state"] == "ready"
    _, s2 = await cp.create("frank", ip=FRA)
    assert epoch_of(s2["stream"]["token"]) == 61


async def test_a_client_that_started_again_keeps_its_new_session(cp: ControlPlane) -> None:
    """After the loss and before the agent came back, the user created a new
    session (it queued: no instance known). The old one is not rebuilt over it:
    one live session per client; the agent is told to end the old stream."""
    iid, ip, s = await streaming(cp, "grace")
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    await forget(cp)
    status, again = await cp.create("grace", ip=FRA)
    assert status == 202 and again["session_id"] != sid
    served = {"session_id": sid, "epoch": epoch, "connected": True}
    status, reg = await cp.agent(
        "register", cp.register_body(EU, iid, ip, max_epoch=epoch, session=served)
    )
    assert status == 200 and reg["state"] == "recycling"
    _, hb = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert hb["commands"] == ["end_session"]
    status, _, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert status == 404
    # The instance, reset, serves the new session at a fresh epoch.
    _, hb = await beat(cp, iid, "ready", max_epoch=epoch)
    assert hb["assignment"]["session_id"] == again["session_id"]
    assert hb["assignment"]["epoch"] > epoch


async def lose_last_writes(cp: ControlPlane, iid: str, sid: str) -> None:
    """What a failover that lost the last writes leaves: the instance as it was
    before it was reserved (ready, counter before the assignment), no session.
    It is left out of the ready set, so no new session takes it before its
    heartbeat (that window is docs/operations.md's "Limits")."""
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:
        k = {name: keys.region_key(EU, name) for name in ("state", "sess", "epoch")}
        await redis.hset(k["state"], iid, "ready")
        await redis.hdel(k["sess"], iid)
        await redis.hincrby(k["epoch"], iid, -1)
        for key in keys.session_keys(sid):
            await redis.delete(key)
    finally:
        await redis.aclose()


async def test_a_heartbeat_rebuilds_what_lost_writes_forgot(cp: ControlPlane) -> None:
    """The instance is still known (no 404, no registration): its heartbeat's
    report takes the session back."""
    iid, _, s = await streaming(cp, "heidi")
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    await lose_last_writes(cp, iid, sid)
    status, hb = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert status == 200 and hb["state"] == "streaming" and hb["commands"] == [], hb
    assert hb["assignment"]["session_id"] == sid and hb["assignment"]["epoch"] == epoch
    status, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert status == 200 and view["state"] == "connected"


async def test_a_heartbeat_that_cannot_rebuild_is_told_to_end(cp: ControlPlane) -> None:
    iid, _, s = await streaming(cp, "ivan")
    sid, epoch = s["session_id"], epoch_of(s["stream"]["token"])
    await lose_last_writes(cp, iid, sid)
    status, again = await cp.create("ivan", ip=FRA)  # the user started again meanwhile
    assert status == 202 and again["session_id"] != sid
    status, hb = await beat(cp, iid, "streaming", session_id=sid, epoch=epoch, max_epoch=epoch)
    assert status == 200 and hb["commands"] == ["end_session"], hb
    assert hb["state"] == "recycling" and hb["assignment"] is None


async def test_an_assignment_at_an_epoch_the_agent_has_seen_is_issued_again(
    cp: ControlPlane,
) -> None:
    """Lost writes took the counter back and a new session got an epoch the
    agent already ended (it would refuse it as stale): its heartbeat's max_epoch
    has it issued again above, and the user's next read carries the new token."""
    iid, _ = await cp_ready(cp)
    _, first = await cp.create("judy", ip=FRA)
    ev = {"instance_id": iid, "region": EU, "session_id": first["session_id"], "epoch": 1}
    await cp.agent("events", {**ev, "type": "session_ended", "detail": {"reason": "idle"}})
    _, hb = await beat(cp, iid, "ready", max_epoch=1)
    assert hb["state"] == "ready"
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    try:
        await redis.hset(keys.region_key(EU, "epoch"), iid, 0)  # the lost write
    finally:
        await redis.aclose()
    _, second = await cp.create("ken", ip=FRA)
    assert epoch_of(second["stream"]["token"]) == 1  # reused: the agent ended 1
    status, hb = await beat(cp, iid, "ready", max_epoch=1)
    assert status == 200 and hb["state"] == "reserved"
    assert hb["assignment"]["session_id"] == second["session_id"]
    assert hb["assignment"]["epoch"] == 2
    sid = second["session_id"]
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=second["session_secret"])
    assert view["state"] == "assigned" and epoch_of(view["stream"]["token"]) == 2
    # The agent takes it and its player connects at the new epoch.
    ev = {"instance_id": iid, "region": EU, "session_id": sid, "epoch": 2}
    assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
    # Its next heartbeat holds the assignment: nothing is issued again.
    _, hb = await beat(cp, iid, "streaming", session_id=sid, epoch=2, max_epoch=2)
    assert hb["assignment"]["epoch"] == 2 and hb["commands"] == []
