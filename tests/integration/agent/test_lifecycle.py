"""The agent enforces the session lifecycle; the control plane shows the outcome."""

from __future__ import annotations

import os
import signal

from simulators.player import SignallingRefused, StreamEnded
from tests.integration.agent.conftest import AgentFactory, ControlPlaneFactory
from tests.integration.agent.test_stream_relay import PROBE, is_blue

BLUE = {"paint": "#1040e0"}


async def test_reconnect_within_window_keeps_session_and_scene(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(reconnect_window_s=5.0)
    agent = await start_agent(cp)
    session = await cp.create_session("client-rc")
    first = agent.player(session)
    await first.connect()
    try:
        await first.wait_first_frame(within_s=15)
        seq = await first.send_input({"type": "set_paint", "color": "#1040e0"})
        assert is_blue((await first.wait_for_seq(seq, within_s=5)).image[PROBE[1], PROBE[0]])
    finally:
        await first.close()
    await agent.wait_health(lambda h: not h["player_connected"])
    again = agent.player(session)
    await again.connect()
    try:
        frame = await again.wait_first_frame(within_s=15)
        assert is_blue(frame.image[PROBE[1], PROBE[0]]), "scene state was lost"
        assert frame.seq == seq
        view = await cp.get_session(session)
        assert view["state"] == "connected"
    finally:
        await again.close()


async def test_beyond_reconnect_window_ends_disconnected_and_instance_ready(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(reconnect_window_s=1.5)
    agent = await start_agent(cp)
    session = await cp.create_session("client-gone")
    player = agent.player(session)
    await player.connect()
    await player.wait_first_frame(within_s=15)
    await player.close()
    assert await cp.wait_ended(session) == "disconnected"
    await cp.wait_instance(agent.instance_id, "ready")
    health = await agent.wait_health(lambda h: h["state"] == "ready")
    # /healthz is unauthenticated: it never says whom the instance serves or served.
    assert not {"session_id", "epoch", "instance_id"} & set(health)
    # The old token is dead even though it has not expired.
    late = agent.player(session)
    try:
        await late.connect()
        raise AssertionError("a token of an ended session was accepted")
    except SignallingRefused as exc:
        assert exc.status == 403
    finally:
        await late.close()


async def test_input_idle_ends_session(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(idle_timeout_s=2.0)
    agent = await start_agent(cp)
    session = await cp.create_session("client-idle")
    player = agent.player(session)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        ended = await player.wait_closed(within_s=10)
        # A final close (1001): Epic's library shows the reason and does not reconnect.
        assert isinstance(ended, StreamEnded) and ended.final and ended.end_reason == "idle"
    finally:
        await player.close()
    assert await cp.wait_ended(session) == "idle"
    await cp.wait_instance(agent.instance_id, "ready")


async def test_max_duration_ends_session_despite_input(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(max_duration_s=4.0, idle_timeout_s=60)
    agent = await start_agent(cp)
    session = await cp.create_session("client-max")
    player = agent.player(session)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        for _ in range(100):  # bounded: ~10 s of input at most
            if player.failure is not None:
                break
            try:
                await player.send_input({"type": "orbit", "dx_deg": 5}, within_s=2)
                await player.wait_frame(lambda f: True, within_s=2)
            except Exception:
                break  # the stream ending mid-send is the point
        ended = await player.wait_closed(within_s=10)
        assert isinstance(ended, StreamEnded) and ended.end_reason == "max_duration"
    finally:
        await player.close()
    assert await cp.wait_ended(session) == "max_duration"


async def test_claim_expires_without_a_player(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(claim_ttl_s=2.0)
    agent = await start_agent(cp)
    session = await cp.create_session("client-claim")
    await agent.wait_health(lambda h: h["state"] == "reserved")
    assert await cp.wait_ended(session) == "claim_expired"
    await cp.wait_instance(agent.instance_id, "ready")
    await agent.wait_health(lambda h: h["state"] == "ready")


async def test_renderer_killed_mid_session(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp)
    session = await cp.create_session("client-crash")
    player = agent.player(session)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        old_pid = (await agent.health())["renderer_pid"]
        assert isinstance(old_pid, int)
        # The renderer is our grandchild (test -> agent -> renderer): kill it by its PID.
        os.kill(old_pid, signal.SIGKILL)
        closed = await player.wait_closed(within_s=10)
        # Not an end: the session is re-placed (here, once the renderer is back).
        assert not (isinstance(closed, StreamEnded) and closed.final), closed
    finally:
        await player.close()
    health = await agent.wait_health(
        lambda h: (
            h["state"] in ("reserved", "streaming") and h["renderer_pid"] not in (None, old_pid)
        )
    )
    assert health["renderer_crashes"] == 1
    # The player follows the new assignment (a fresh token) to the restarted renderer.
    again = await cp.wait_session(
        session,
        lambda v: v["state"] == "assigned" and v["stream"]["token"] != session["stream"]["token"],
    )
    assert (
        agent.epoch_of(again["stream"]["token"]) == agent.epoch_of(session["stream"]["token"]) + 1
    )
    player = agent.player(again)
    await player.connect()
    try:
        # A fresh renderer: the frontend sends the session's configuration again.
        await player.wait_first_frame(within_s=15)
        seq = await player.send_input({"type": "configure", "configuration": BLUE})
        assert is_blue((await player.wait_for_seq(seq, within_s=5)).image[PROBE[1], PROBE[0]])
        assert (await cp.get_session(session))["state"] == "connected"
    finally:
        await player.close()
    await cp.delete_session(session)
    await cp.wait_instance(agent.instance_id, "ready")
    # And it serves the next session.
    nxt = await cp.create_session("client-after-crash")
    player = agent.player(nxt)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
    finally:
        await player.close()


async def test_the_next_user_is_held_while_the_renderer_restarts(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    """A token for the instance's next assignment, presented while the renderer
    resets after the last session, is held until the renderer is ready and the
    assignment arrives, then accepted: never refused 403 (found by make chaos,
    where the control plane had already handed the instance on)."""
    cp = await start_control_plane()
    agent = await start_agent(cp, renderer_restart_backoff_s=2.0)
    first = await cp.create_session("client-before")
    await agent.wait_health(lambda h: h["state"] == "reserved")
    await cp.delete_session(first)
    await agent.wait_health(lambda h: h["state"] == "recycling")
    nxt = await cp.create_session("client-next", expect=202)  # the only instance is resetting
    epoch = agent.epoch_of(first["stream"]["token"]) + 1
    # Its token as the control plane will issue it; the TURN credential is any valid one.
    player = agent.player(first, token=agent.token(nxt["session_id"], epoch))
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        view = await cp.get_session(nxt)
        assert view["state"] == "connected"
        assert agent.epoch_of(view["stream"]["token"]) == epoch
    finally:
        await player.close()
    assert (await agent.health())["renderer_restarts"] == 1
