"""Ops API: admin bearer, pools, instances, constraints, drains, ending sessions."""

from __future__ import annotations

from simulators.geoip_db import ip_of
from tests.fixtures.control_plane import ADMIN, ControlPlane

EU, EUW = "eu-central-1", "eu-west-1"
FRA = ip_of("frankfurt")


async def test_pools_need_the_admin_token(cp: ControlPlane) -> None:
    assert (await cp.call("GET", "/v1/pools"))[0] == 401
    assert (await cp.call("GET", "/v1/pools", token="guess"))[0] == 403


async def test_pools_report_instances_queue_and_arrivals(cp: ControlPlane) -> None:
    await cp.ready_instance(EU)
    await cp.create("a", ip=FRA)
    await cp.create("b", ip=FRA)
    status, body, _ = await cp.call("GET", "/v1/pools", token=ADMIN)
    assert status == 200 and set(body["regions"]) == {EU, EUW, "us-east-1", "us-west-2"}
    eu = body["regions"][EU]
    assert eu["instances"]["reserved"] == 1 and eu["queue_depth"] == 1 and eu["live_sessions"] == 1
    assert len(eu["arrivals_per_min"]) == 15 and eu["arrivals_per_min"][-1] == 2
    # b waits in its own geography (both EU regions), not yet in the US.
    assert body["regions"][EUW]["queue_depth"] == 1
    assert body["regions"]["us-east-1"]["queue_depth"] == 0
    # ...but it is one person: counted once, under one region.
    assert body["queued_sessions"] == 1
    assert sum(r["queued_here"] for r in body["regions"].values()) == 1
    status, body, _ = await cp.call("GET", f"/v1/pools/{EU}/instances", token=ADMIN)
    [row] = body["instances"]
    assert row["state"] == "reserved" and row["session_id"] and row["heartbeat_age_s"] >= 0


async def test_constrained_region_ranks_last(cp: ControlPlane) -> None:
    await cp.ready_instance(EU)
    await cp.ready_instance(EUW)
    status, _, _ = await cp.call(
        "PUT",
        f"/v1/pools/{EU}/constraint",
        token=ADMIN,
        json={"constrained": True, "reason": "InsufficientInstanceCapacity"},
    )
    assert status == 204
    await cp.until_constrained(EU)
    _, s = await cp.create("alice", ip=FRA)
    assert s["region"] == EUW
    status, body, _ = await cp.call("GET", "/v1/pools", token=ADMIN)
    assert body["regions"][EU]["constrained"] is True


async def test_drain_and_admin_end(cp: ControlPlane) -> None:
    iid = await cp.ready_instance(EU)
    _, s = await cp.create("alice", ip=FRA)
    status, body, _ = await cp.call(
        "POST", f"/v1/pools/{EU}/instances/{iid}/drain", token=ADMIN, json={"force": True}
    )
    assert status == 202 and body["state"] == "draining"
    _, view, _ = await cp.call("GET", f"/v1/sessions/{s['session_id']}", token=s["session_secret"])
    assert view["end_reason"] == "drained"
    status, problem, _ = await cp.call(
        "POST", f"/v1/pools/{EU}/instances/i-nope/drain", token=ADMIN
    )
    assert status == 404 and problem["field"] == "instance_id"
    status, problem, _ = await cp.call("GET", "/v1/pools/mars-north-1/instances", token=ADMIN)
    assert status == 404 and problem["field"] == "region"
    _, other = await cp.create("bob", ip=FRA)
    status, body, _ = await cp.call(
        "POST", f"/v1/admin/sessions/{other['session_id']}/end", token=ADMIN
    )
    assert status == 202 and body["ended_now"] is True
    status, _, _ = await cp.call("POST", "/v1/admin/sessions/nope/end", token=ADMIN)
    assert status == 404
