"""A TURN secret that does not match coturn's fails fast, with an error that says so."""

from __future__ import annotations

import time

import pytest

from simulators.player import NoRelayCandidate, StreamEnded
from tests.integration.agent.conftest import AgentFactory, ControlPlaneFactory

FAST_S = 8.0  # ICE would otherwise wait ~30 s before giving up


async def test_control_plane_with_wrong_turn_secret_fails_fast(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(turn_secret="not-the-coturn-secret")
    agent = await start_agent(cp)
    session = await cp.create_session("client-turn")
    player = agent.player(session)
    started = time.monotonic()
    await player.connect()
    try:
        with pytest.raises(NoRelayCandidate, match="TURN secret mismatch"):
            await player.wait_first_frame(within_s=FAST_S)
        assert time.monotonic() - started < FAST_S
        assert player.frames == 0
    finally:
        await player.close()


async def test_agent_with_wrong_turn_secret_fails_fast(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp, turn_secret="not-the-coturn-secret")
    session = await cp.create_session("client-turn-r")
    player = agent.player(session)
    started = time.monotonic()
    await player.connect()
    try:
        ended = await player.wait_closed(within_s=FAST_S)
        assert isinstance(ended, StreamEnded)
        assert "no TURN relay candidate" in ended.reason
        # As Epic's server closes a player the streamer disconnects: not final.
        assert ended.code == 1011 and not ended.final
        assert time.monotonic() - started < FAST_S
    finally:
        await player.close()
