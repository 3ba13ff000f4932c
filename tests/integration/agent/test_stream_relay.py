"""A player streams from the real agent + renderer stub through real coturn, relay only."""

from __future__ import annotations

import numpy as np

from regional_stack.renderer import scene
from regional_stack.signaling.player import Player
from tests.integration.agent.conftest import AgentFactory, Coturn, StandInControlPlane


def _is_blue(pixel: np.ndarray) -> bool:
    r, g, b = (int(v) for v in pixel)
    return b > 150 and b > r + 60 and b > g + 60


async def test_relay_stream_and_paint(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url)
    epoch = stand_in.assign("sess-paint")
    player = Player(
        agent.signal_url,
        agent.token("sess-paint", epoch),
        ice_servers=coturn.ice_servers("sess-paint"),
    )
    await player.connect()
    try:
        first = await player.wait_first_frame(within_s=15)
        assert first.image.shape == (180, 320, 3)
        x, y = scene.body_probe(scene.SceneState(), 320, 180)
        assert not _is_blue(first.image[y, x])
        seq = await player.send_input({"type": "set_paint", "color": "#1040e0"})
        frames_before = player.frames
        shown = await player.wait_for_seq(seq, within_s=5)
        # Bounded: the stub sends a frame at once on input; allow a few in flight.
        assert player.frames - frames_before <= 10
        assert _is_blue(shown.image[y, x]), shown.image[y, x]
        event = await stand_in.wait_event("client_connected")
        assert event["session_id"] == "sess-paint" and event["epoch"] == epoch
        health = await agent.health()
        assert health["state"] == "streaming" and health["player_connected"]
    finally:
        await player.close()
