"""A TURN secret that does not match coturn's fails fast, with an error that says so."""

from __future__ import annotations

import time

import pytest

from regional_stack.signaling.player import NoRelayCandidate, Player, StreamEnded
from tests.integration.agent.conftest import AgentFactory, Coturn, StandInControlPlane

FAST_S = 8.0  # ICE would otherwise wait ~30 s before giving up


async def test_player_with_wrong_turn_secret_fails_fast(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url)
    epoch = stand_in.assign("sess-turn")
    player = Player(
        agent.signal_url,
        agent.token("sess-turn", epoch),
        ice_servers=coturn.ice_servers("sess-turn", secret="not-the-coturn-secret"),
    )
    started = time.monotonic()
    await player.connect()
    try:
        with pytest.raises(NoRelayCandidate, match="TURN secret mismatch"):
            await player.wait_first_frame(within_s=FAST_S)
        assert time.monotonic() - started < FAST_S
        assert player.frames == 0
    finally:
        await player.close()


async def test_renderer_with_wrong_turn_secret_fails_fast(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url, turn_secret="not-the-coturn-secret")
    epoch = stand_in.assign("sess-turn-r")
    player = Player(
        agent.signal_url,
        agent.token("sess-turn-r", epoch),
        ice_servers=coturn.ice_servers("sess-turn-r"),
    )
    started = time.monotonic()
    await player.connect()
    try:
        ended = await player.wait_closed(within_s=FAST_S)
        assert isinstance(ended, StreamEnded)
        assert "no TURN relay candidate" in ended.reason
        assert time.monotonic() - started < FAST_S
    finally:
        await player.close()
