"""Agent API: per-region authentication, heartbeats carry the assignment, events drive the lifecycle."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from simulators.geoip_db import ip_of
from tests.fixtures.control_plane import ADMIN, ControlPlane, agent_secret

EU = "eu-central-1"
FRA = ip_of("frankfurt")


async def test_register_needs_the_regions_own_secret(cp: ControlPlane) -> None:
    iid, ip = cp.launch(EU)
    body = cp.register_body(EU, iid, ip)
    status, problem, _ = await cp.call("POST", "/v1/agents/register", json=body)
    assert status == 401
    status, problem, _ = await cp.call(
        "POST", "/v1/agents/register", json=body, token=agent_secret("us-east-1")
    )
    assert status == 403 and problem["field"] == "region"
    status, data, _ = await cp.call(
        "POST", "/v1/agents/register", json=body, token=agent_secret(EU)
    )
    token = data.pop("agent_token")
    assert data.pop("agent_token_expires_unix") > time.time() + 600
    assert token.startswith("a1.")
    assert status == 200 and data == {
        "instance_id": iid,
        "state": "booting",
        "heartbeat_interval_s": 5.0,
        # The timeouts the agent enforces come from here (the control plane's settings).
        "claim_ttl_s": 90.0,
        "reconnect_window_s": 60.0,
        "idle_timeout_s": 600.0,
        "max_duration_s": 7200.0,
    }


async def test_heartbeat_answers_assignment_and_commands(cp: ControlPlane) -> None:
    iid = await cp.ready_instance(EU)
    _, s = await cp.create("alice", ip=FRA)
    status, hb = await cp.agent("heartbeat", {"instance_id": iid, "region": EU, "state": "ready"})
    assert status == 200 and hb["state"] == "reserved"
    assert hb["assignment"]["session_id"] == s["session_id"] and hb["assignment"]["epoch"] == 1
    assert hb["assignment"]["claim_expires_unix"] > 0 and hb["commands"] == []
    await cp.call("POST", f"/v1/pools/{EU}/instances/{iid}/drain", token=ADMIN, json={})
    _, hb = await cp.agent(
        "heartbeat",
        {
            "instance_id": iid,
            "region": EU,
            "state": "reserved",
            "session_id": s["session_id"],
            "epoch": 1,
        },
    )
    assert hb["commands"] == ["drain"]


async def test_unknown_instance_heartbeat_is_404_so_the_agent_registers(cp: ControlPlane) -> None:
    iid = await cp.ready_instance(EU)
    redis = aioredis.Redis.from_url(cp.settings.redis_url)
    await redis.flushdb()  # the control plane lost its state (a Redis replaced)
    await redis.aclose()
    status, problem = await cp.agent(
        "heartbeat", {"instance_id": iid, "region": EU, "state": "ready"}
    )
    assert status == 404 and problem["type"].endswith("/unknown-instance")


async def test_events_connect_end_and_refuse_stale_epochs(cp: ControlPlane) -> None:
    iid = await cp.ready_instance(EU)
    _, s = await cp.create("alice", ip=FRA)
    sid = s["session_id"]
    ev = {"instance_id": iid, "region": EU, "session_id": sid}
    status, problem = await cp.agent("events", {**ev, "type": "client_connected", "epoch": 7})
    assert status == 409 and problem["field"] == "epoch"
    status, _ = await cp.agent("events", {**ev, "type": "client_connected", "epoch": 1})
    assert status == 202
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert view["state"] == "connected"
    status, problem = await cp.agent(
        "events", {**ev, "type": "session_ended", "epoch": 1, "detail": {"reason": "bored"}}
    )
    assert status == 422 and problem["field"] == "detail.reason"
    status, data = await cp.agent(
        "events", {**ev, "type": "session_ended", "epoch": 1, "detail": {"reason": "idle"}}
    )
    assert status == 202 and data["state"] == "recycling"
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert (view["state"], view["end_reason"]) == ("ended", "idle")
    status, data = await cp.agent("events", {"instance_id": iid, "region": EU, "type": "ready"})
    assert status == 202
    _, hb = await cp.agent("heartbeat", {"instance_id": iid, "region": EU, "state": "ready"})
    assert hb["state"] == "ready" and hb["assignment"] is None


async def test_a_lost_end_event_is_settled_by_the_heartbeat_that_repeats_it(
    cp: ControlPlane,
) -> None:
    """The agent ended the session (idle) and its event never arrived: the next
    heartbeat names that end (`ended`, as JSON) and the session ends with it."""
    iid = await cp.ready_instance(EU)
    _, s = await cp.create("alice", ip=FRA)
    sid = s["session_id"]
    ev = {"instance_id": iid, "region": EU, "session_id": sid, "epoch": 1}
    assert (await cp.agent("events", {**ev, "type": "client_connected"}))[0] == 202
    ended = {"session_id": sid, "epoch": 1, "reason": "idle"}
    status, hb = await cp.agent(
        "heartbeat",
        {"instance_id": iid, "region": EU, "state": "recycling", "max_epoch": 1, "ended": ended},
    )
    assert status == 200 and hb["assignment"] is None
    _, view, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=s["session_secret"])
    assert (view["state"], view["end_reason"]) == ("ended", "idle")
    status, problem = await cp.agent(
        "heartbeat",
        {"instance_id": iid, "region": EU, "state": "ready",
         "ended": {**ended, "reason": "bored"}},
    )  # fmt: skip
    assert status == 422 and problem["field"] == "ended.reason"


async def test_renderer_crash_re_places_the_session(cp: ControlPlane) -> None:
    iid = await cp.ready_instance(EU)
    _, s = await cp.create("alice", ip=FRA)
    ev = {"instance_id": iid, "region": EU, "session_id": s["session_id"], "epoch": 1}
    assert (await cp.agent("events", {**ev, "type": "renderer_crashed"}))[0] == 202
    _, view, _ = await cp.call("GET", f"/v1/sessions/{s['session_id']}", token=s["session_secret"])
    assert view["state"] == "queued" and view["position"] == 1  # waits for its renderer
    # The renderer is back: the same instance serves it again, at a fresh epoch.
    _, hb = await cp.agent("heartbeat", {"instance_id": iid, "region": EU, "state": "ready"})
    assert hb["assignment"]["session_id"] == s["session_id"] and hb["assignment"]["epoch"] == 2
    # A repeated (stale) report changes nothing.
    assert (await cp.agent("events", {**ev, "type": "renderer_crashed"}))[0] == 202
    _, view, _ = await cp.call("GET", f"/v1/sessions/{s['session_id']}", token=s["session_secret"])
    assert view["state"] == "assigned"


async def test_session_events_need_session_and_epoch(cp: ControlPlane) -> None:
    iid = await cp.ready_instance(EU)
    status, problem = await cp.agent(
        "events", {"instance_id": iid, "region": EU, "type": "client_connected"}
    )
    assert status == 422 and problem["field"] == "session_id"
