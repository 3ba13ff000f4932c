"""Redis loses everything while a session streams: the agents are the ground
truth (docs/design.md invariants 4 and 6, docs/operations.md "Redis loses data").

All real: the control plane, its Redis (its own database, emptied with FLUSHDB,
which is what a restart without persistence leaves), the agent process, its
renderer and a relay-only player through coturn.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from tests.fixtures.servers import RedisServer
from tests.integration.agent.conftest import (
    REDIS_DB,
    AgentFactory,
    AgentProcess,
    ControlPlane,
    ControlPlaneFactory,
    Session,
)

HEARTBEAT_S = 1.0


async def forget_everything(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB}")
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def test_live_session_is_rebuilt_and_fencing_holds_after_redis_forgets(
    start_control_plane: ControlPlaneFactory,
    start_agent: AgentFactory,
    redis_server: RedisServer,
) -> None:
    cp = await start_control_plane()
    agent: AgentProcess = await start_agent(cp)
    session = await cp.create_session("loss-1")
    player = agent.player(session)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        await cp.wait_session(session, lambda v: v["state"] == "connected")
        first_epoch = agent.epoch_of(session["stream"]["token"])

        await forget_everything(redis_server)
        forgot_at = time.monotonic()
        # Within one heartbeat period (the 404, then at once the registration it
        # triggers) the session answers its user's secret again, as it was.
        view = await until_readable(cp, session, within_s=10)
        rebuilt_after = time.monotonic() - forgot_at
        assert view["session_id"] == session["session_id"]
        assert view["stream"]["url"] == session["stream"]["url"]
        assert agent.epoch_of(view["stream"]["token"]) == first_epoch
        row = await cp.instance(agent.instance_id)
        assert row is not None and row["state"] == "streaming"
        assert row["session_id"] == session["session_id"]
        assert rebuilt_after < 2 * HEARTBEAT_S, rebuilt_after

        # The live stream never stopped: frames keep coming, well past the
        # heartbeats that used to be told to end it.
        seen = player.frames
        await asyncio.sleep(3 * HEARTBEAT_S)  # bounded: several heartbeats must pass
        await player.wait_frame(lambda _: player.frames > seen + 10, within_s=5)
        assert player.failure is None
        health = await agent.health()
        assert health["state"] == "streaming" and health["player_connected"]

        # The user ends it with the secret they hold.
        await cp.delete_session(session)
        assert await cp.wait_ended(session) == "client_ended"
        await player.wait_closed(within_s=10)
    finally:
        await player.close()

    # The next assignment on that instance is fresh from the agent's point of view.
    await cp.wait_instance(agent.instance_id, "ready")
    await agent.wait_health(lambda h: h["state"] == "ready")
    await assert_next_assignment_accepted(cp, agent, "loss-2", above=first_epoch)


async def test_idle_agent_keeps_epochs_climbing_after_redis_forgets(
    start_control_plane: ControlPlaneFactory,
    start_agent: AgentFactory,
    redis_server: RedisServer,
) -> None:
    """The symptom of issue 14: the epoch restarted at 0 in Redis while the
    agent remembered higher ended ones, so every assignment was refused."""
    cp = await start_control_plane()
    agent = await start_agent(cp)
    last = 0
    for n in range(3):  # a few sessions end here: the agent remembers epoch 3
        s = await cp.create_session(f"climb-{n}")
        last = agent.epoch_of(s["stream"]["token"])
        await agent.wait_health(lambda h: h["state"] == "reserved")  # it took the assignment
        await cp.delete_session(s)
        await cp.wait_instance(agent.instance_id, "ready")
        await agent.wait_health(lambda h: h["state"] == "ready")
    assert last == 3

    await forget_everything(redis_server)
    # The agent's next heartbeat gets 404; it registers again, with its epochs.
    await cp.wait_instance(agent.instance_id, "ready", within_s=5 * HEARTBEAT_S)
    await assert_next_assignment_accepted(cp, agent, "climb-after", above=last)


async def until_readable(cp: ControlPlane, session: Session, *, within_s: float) -> Session:
    """Poll GET with the user's secret until the session answers (an s2 read waits
    for the agent's report; an s1 one answers 404 meanwhile)."""
    path = f"/v1/sessions/{session['session_id']}"
    async with asyncio.timeout(within_s):
        while True:
            status, body = await cp._call("GET", path, bearer=session["session_secret"])
            if status == 200:
                return dict(body)
            assert status == 404, (status, body)
            await asyncio.sleep(0.05)


async def assert_next_assignment_accepted(
    cp: ControlPlane, agent: AgentProcess, client_id: str, *, above: int
) -> None:
    nxt = await cp.create_session(client_id)
    assert agent.epoch_of(nxt["stream"]["token"]) > above
    await cp.wait_serving(agent.instance_id, nxt["session_id"])
    player = agent.player(nxt)
    await player.connect()  # a stale epoch would be refused here (403)
    try:
        await player.wait_first_frame(within_s=15)
        await cp.wait_session(nxt, lambda v: v["state"] == "connected")
    finally:
        await player.close()
    await cp.delete_session(nxt)
