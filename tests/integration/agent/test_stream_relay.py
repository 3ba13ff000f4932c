"""A player gets a session from the session API and streams relay-only through coturn."""

from __future__ import annotations

import numpy as np

from regional_stack.renderer import scene
from tests.integration.agent.conftest import AgentFactory, ControlPlaneFactory

PROBE = scene.body_probe(scene.SceneState(), 320, 180)


def is_blue(pixel: np.ndarray) -> bool:
    r, g, b = (int(v) for v in pixel)
    return b > 150 and b > r + 60 and b > g + 60


async def test_session_api_to_frames_and_paint(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp)
    session = await cp.create_session("client-paint")
    assert session["state"] == "assigned"
    assert all(s["username"].endswith(":" + session["session_id"]) for s in session["ice_servers"])
    player = agent.player(session)
    await player.connect()
    try:
        first = await player.wait_first_frame(within_s=15)
        assert first.image.shape == (180, 320, 3)
        assert not is_blue(first.image[PROBE[1], PROBE[0]])
        seq = await player.send_input({"type": "set_paint", "color": "#1040e0"})
        frames_before = player.frames
        shown = await player.wait_for_seq(seq, within_s=5)
        # Bounded: the stub sends a frame at once on input; allow a few in flight.
        assert player.frames - frames_before <= 10
        assert is_blue(shown.image[PROBE[1], PROBE[0]]), shown.image[PROBE[1], PROBE[0]]
        await cp.wait_session(session, lambda v: v["state"] == "connected")
        await cp.wait_instance(agent.instance_id, "streaming")
    finally:
        await player.close()
