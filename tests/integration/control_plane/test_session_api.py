"""Session API through a real HTTP server and a real Redis."""

from __future__ import annotations

import asyncio
import json
import time

from bench.redis_calls import commands_run
from simulators.geoip_db import ip_of
from streamfleet.tokens import verify
from streamfleet.turn import turn_credential
from tests.fixtures.control_plane import TURN_SECRET, ControlPlane

FRA = ip_of("frankfurt")


async def test_create_assigned_carries_stream_token_and_turn(cp: ControlPlane) -> None:
    iid = await cp.ready_instance("eu-central-1")
    status, body, headers = await cp.call(
        "POST", "/v1/sessions", json={"client_id": "alice", "model": "roadster", "configuration": {"paint": "red"}},
        headers={"X-Forwarded-For": FRA},
    )  # fmt: skip
    assert status == 201, body
    assert headers["Location"] == f"/v1/sessions/{body['session_id']}"
    assert body["state"] == "assigned" and body["region"] == "eu-central-1"
    claims = verify(body["stream"]["token"], keys=cp.settings.keyring(), now_unix=time.time())
    assert (claims.session_id, claims.instance_id, claims.epoch) == (body["session_id"], iid, 1)
    assert body["stream"]["url"] == f"http://127.0.0.1:8001/i/{claims.private_ip}/"
    assert body["stream"]["signaling_url"] == f"ws://127.0.0.1:8001/i/{claims.private_ip}/signal"
    [ice] = body["ice_servers"]
    expected = turn_credential(TURN_SECRET, body["session_id"], claims.expires_unix)
    assert (ice["username"], ice["credential"]) == (expected.username, expected.credential)
    assert body["session_secret"] and body["claim_expires_at"].endswith("Z")


async def test_create_queued_then_idempotent_repeat(cp: ControlPlane) -> None:
    status, first = await cp.create("bob", ip=FRA)
    assert status == 202 and first["state"] == "queued" and first["position"] == 1
    assert "stream" not in first
    status, again, headers = await cp.call(
        "POST",
        "/v1/sessions",
        json={"client_id": "bob", "model": "roadster"},
        headers={"X-Forwarded-For": FRA},
    )
    assert status == 202 and again["session_id"] == first["session_id"]
    assert headers["Idempotent-Replayed"] == "true"


async def test_get_and_delete_need_the_session_secret(cp: ControlPlane) -> None:
    await cp.ready_instance("eu-central-1")
    _, s = await cp.create("carol", ip=FRA)
    path = f"/v1/sessions/{s['session_id']}"
    status, body, headers = await cp.call("GET", path)
    assert (
        status == 401 and body["type"].endswith("/unauthorized") and "WWW-Authenticate" in headers
    )
    status, body, _ = await cp.call("GET", path, token="not-the-secret")
    assert status == 404 and body["field"] == "session_id"
    status, body, _ = await cp.call("DELETE", path, token="not-the-secret")
    assert status == 404
    status, body, _ = await cp.call("GET", path, token=s["session_secret"])
    assert status == 200 and body["state"] == "assigned" and "session_secret" not in body
    assert body["stream"]["token"] == s["stream"]["token"]  # stable across reads
    status, body, _ = await cp.call("DELETE", path, token=s["session_secret"])
    assert status == 200 and body == {
        "session_id": s["session_id"],
        "state": "ended",
        "end_reason": "client_ended",
    }
    status, body, _ = await cp.call("DELETE", path, token=s["session_secret"])
    assert status == 200 and body["state"] == "ended"  # idempotent
    status, body, _ = await cp.call("GET", "/v1/sessions/not-a-session-id", token="x")
    assert status == 404
    # A keyed secret is checked without reading the session first; for a session
    # Redis no longer holds it answers exactly as a wrong secret does.
    from control_plane.api.context import SERVICES

    gone = s["session_id"].split("-")[0] + "-" + "0" * 16
    secret = cp.app[SERVICES].session_secrets.mint(gone)
    _, wrong, _ = await cp.call("DELETE", f"/v1/sessions/{gone}", token="not-the-secret")
    status, body, _ = await cp.call("DELETE", f"/v1/sessions/{gone}", token=secret)
    assert status == 404 and body == wrong


class EventReader:
    """Collects a session's server-sent events in the background."""

    def __init__(self, cp: ControlPlane, sid: str, secret: str) -> None:
        self.events: list[dict[str, object]] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read(cp, sid, secret))

    async def _read(self, cp: ControlPlane, sid: str, secret: str) -> None:
        async with cp.http.get(
            f"{cp.url}/v1/sessions/{sid}/events", params={"secret": secret}
        ) as resp:
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            async for line in resp.content:
                if line.startswith(b"data: "):
                    self.events.append(json.loads(line[6:]))
                    self._changed.set()

    async def until(self, predicate: object, timeout: float = 10) -> dict[str, object]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):  # type: ignore[operator]
                        return event
                self._changed.clear()
                await self._changed.wait()


async def test_events_follow_queue_position_until_the_stream_is_given(cp: ControlPlane) -> None:
    iid = await cp.ready_instance("eu-central-1")
    _, first = await cp.create("first", ip=FRA)
    _, second = await cp.create("second", ip=FRA)
    _, third = await cp.create("third", ip=FRA)
    assert (second["position"], third["position"]) == (1, 2)
    reader = EventReader(cp, third["session_id"], third["session_secret"])
    await reader.until(lambda e: e.get("position") == 2)
    await cp.call("DELETE", f"/v1/sessions/{first['session_id']}", token=first["session_secret"])
    await cp.agent("heartbeat", {"instance_id": iid, "region": "eu-central-1", "state": "ready"})
    await reader.until(lambda e: e.get("position") == 1)
    await cp.call("DELETE", f"/v1/sessions/{second['session_id']}", token=second["session_secret"])
    await cp.agent("heartbeat", {"instance_id": iid, "region": "eu-central-1", "state": "ready"})
    assigned = await reader.until(lambda e: e["state"] == "assigned")
    assert "stream" in assigned and [e.get("position") for e in reader.events[:2]] == [2, 1]
    reader.task.cancel()


async def test_waiting_clients_cost_redis_per_region_not_per_client(cp: ControlPlane) -> None:
    """Every waiting client's position comes from one read per region per tick
    (the queue feed), not from reads of its own (about seven calls per client per
    tick before): 50 more waiting streams add next to nothing. Positions still
    move as the line does."""
    iid = await cp.ready_instance("eu-central-1")
    _, first = await cp.create("first", ip=FRA)
    waiting = [(await cp.create(f"waiter-{n}", ip=FRA))[1] for n in range(60)]
    readers: list[EventReader] = []

    async def follow(upto: int) -> None:
        for n in range(len(readers), upto):
            w = waiting[n]
            readers.append(EventReader(cp, w["session_id"], w["session_secret"]))
        for n, reader in enumerate(readers):
            await reader.until(lambda e, n=n: e.get("position") == n + 1)

    ticks = 40  # of sse_poll_s each

    async def calls_over_ticks() -> int:
        before = await commands_run(cp.settings.redis_url)
        await asyncio.sleep(ticks * cp.settings.sse_poll_s)
        return await commands_run(cp.settings.redis_url) - before

    await follow(10)
    with_few = await calls_over_ticks()
    await follow(60)
    with_many = await calls_over_ticks()
    # Before the feed the 50 added streams cost ~1.9 calls each per tick here
    # (CPU-bound; ~7 with time to spare); now only the reaper's noise differs.
    assert with_many - with_few < 50 * ticks * 3 / 4, (with_few, with_many)
    # The head is served: every stream behind it moves up by one.
    await cp.call("DELETE", f"/v1/sessions/{first['session_id']}", token=first["session_secret"])
    await cp.agent("heartbeat", {"instance_id": iid, "region": "eu-central-1", "state": "ready"})
    await readers[0].until(lambda e: e["state"] == "assigned")
    for n, reader in enumerate(readers[1:], start=1):
        await reader.until(lambda e, n=n: e.get("position") == n)
    for reader in readers:
        reader.task.cancel()


async def test_events_end_when_the_session_ends(cp: ControlPlane) -> None:
    _, s = await cp.create("dora", ip=FRA)
    reader = EventReader(cp, s["session_id"], s["session_secret"])
    await reader.until(lambda e: e["state"] == "queued")
    await cp.call("DELETE", f"/v1/sessions/{s['session_id']}", token=s["session_secret"])
    await asyncio.wait_for(reader.task, 10)  # the server closes the stream after "ended"
    assert reader.events[-1] == {
        "session_id": s["session_id"],
        "state": "ended",
        "end_reason": "client_ended",
    }
