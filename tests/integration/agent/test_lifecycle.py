"""The agent enforces the session lifecycle with real processes and real media."""

from __future__ import annotations

import os
import signal

import numpy as np

from regional_stack.renderer import scene
from regional_stack.signaling.player import Player, StreamEnded
from tests.integration.agent.conftest import AgentFactory, Coturn, StandInControlPlane

PROBE = scene.body_probe(scene.SceneState(), 320, 180)


def _is_blue(pixel: np.ndarray) -> bool:
    r, g, b = (int(v) for v in pixel)
    return b > 150 and b > r + 60 and b > g + 60


def _player(agent: object, coturn: Coturn, session_id: str, epoch: int) -> Player:
    return Player(
        agent.signal_url,  # type: ignore[attr-defined]
        agent.token(session_id, epoch),  # type: ignore[attr-defined]
        ice_servers=coturn.ice_servers(session_id),
    )


def _reason(stand_in: StandInControlPlane, session_id: str) -> str | None:
    for e in stand_in.events:
        if e["type"] == "session_ended" and e["session_id"] == session_id:
            return str(e["detail"]["reason"])
    return None


async def test_reconnect_within_window_keeps_session_and_scene(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url, reconnect_window_s=3.0)
    epoch = stand_in.assign("sess-rc")
    first = _player(agent, coturn, "sess-rc", epoch)
    await first.connect()
    try:
        await first.wait_first_frame(within_s=15)
        seq = await first.send_input({"type": "set_paint", "color": "#1040e0"})
        assert _is_blue((await first.wait_for_seq(seq, within_s=5)).image[PROBE[1], PROBE[0]])
    finally:
        await first.close()
    await stand_in.wait_event("client_disconnected")
    again = _player(agent, coturn, "sess-rc", epoch)
    await again.connect()
    try:
        frame = await again.wait_first_frame(within_s=15)
        assert _is_blue(frame.image[PROBE[1], PROBE[0]]), "scene state was lost"
        assert frame.seq == seq
        await stand_in.wait_event("client_reconnected")
        assert _reason(stand_in, "sess-rc") is None
    finally:
        await again.close()


async def test_beyond_reconnect_window_ends_disconnected_and_instance_ready(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url, reconnect_window_s=1.5)
    epoch = stand_in.assign("sess-gone")
    player = _player(agent, coturn, "sess-gone", epoch)
    await player.connect()
    await player.wait_first_frame(within_s=15)
    await player.close()
    ended = await stand_in.wait_event("session_ended")
    assert ended["detail"]["reason"] == "disconnected" and ended["epoch"] == epoch
    ready_count = stand_in.event_types().count("ready")
    await stand_in.wait_event(
        "ready", where=lambda _: stand_in.event_types().count("ready") > ready_count
    )
    health = await agent.wait_health(lambda h: h["state"] == "ready")
    assert health["session_id"] is None
    # The old token is dead even though it has not expired.
    late = _player(agent, coturn, "sess-gone", epoch)
    try:
        await late.connect()
        raise AssertionError("a token of an ended session was accepted")
    except Exception as exc:
        assert getattr(exc, "status", None) == 403, exc
    finally:
        await late.close()


async def test_input_idle_ends_session(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url, idle_timeout_s=2.0)
    epoch = stand_in.assign("sess-idle")
    player = _player(agent, coturn, "sess-idle", epoch)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        ended = await player.wait_closed(within_s=10)
        assert isinstance(ended, StreamEnded) and "idle" in ended.reason
        event = await stand_in.wait_event("session_ended")
        assert event["session_id"] == "sess-idle" and event["detail"]["reason"] == "idle"
    finally:
        await player.close()
    await agent.wait_health(lambda h: h["state"] == "ready")


async def test_max_duration_ends_session_despite_input(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url, max_duration_s=3.0, idle_timeout_s=60)
    epoch = stand_in.assign("sess-max")
    player = _player(agent, coturn, "sess-max", epoch)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        for _ in range(100):  # bounded: ~10 s of input at most
            if player.failure is not None:
                break
            try:
                await player.send_input({"type": "orbit", "dx_deg": 5}, within_s=2)
            except Exception:
                break
            await player.wait_frame(lambda f: True, within_s=2)
        ended = await player.wait_closed(within_s=10)
        assert "max_duration" in str(ended)
        event = await stand_in.wait_event("session_ended")
        assert event["session_id"] == "sess-max" and event["detail"]["reason"] == "max_duration"
    finally:
        await player.close()


async def test_claim_expires_without_a_player(
    stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url)
    stand_in.assign("sess-claim", claim_ttl_s=1.5)
    await agent.wait_health(lambda h: h["state"] == "reserved")
    ended = await stand_in.wait_event("session_ended")
    assert ended["detail"]["reason"] == "claim_expired"
    await agent.wait_health(lambda h: h["state"] == "ready")


async def test_renderer_killed_mid_session(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url)
    epoch = stand_in.assign("sess-crash")
    player = _player(agent, coturn, "sess-crash", epoch)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        health = await agent.health()
        old_pid = health["renderer_pid"]
        assert isinstance(old_pid, int)
        # The renderer is our grandchild (test -> agent -> renderer): kill it by its PID.
        os.kill(old_pid, signal.SIGKILL)
        crashed = await stand_in.wait_event("renderer_crashed")
        assert crashed["session_id"] == "sess-crash" and crashed["epoch"] == epoch
        ended = await stand_in.wait_event("session_ended")
        assert ended["detail"]["reason"] == "instance_lost"
        closed = await player.wait_closed(within_s=10)
        assert isinstance(closed, StreamEnded)
    finally:
        await player.close()
    health = await agent.wait_health(
        lambda h: h["state"] == "ready" and h["renderer_pid"] not in (None, old_pid)
    )
    assert health["renderer_crashes"] == 1
