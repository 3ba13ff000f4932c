"""Re-placement with real agents and a real aiortc player: the session whose
instance dies (kill -9 of its agent and renderer) moves to another ready
instance; the player follows the new assignment and the renderer gets the
session's configuration again."""

from __future__ import annotations

import os
import signal

from tests.integration.agent.conftest import AgentFactory, ControlPlaneFactory
from tests.integration.agent.test_stream_relay import PROBE, is_blue

BLUE = {"paint": "#1040e0"}


async def test_agent_killed_mid_session_moves_the_session_to_another_agent(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(heartbeat_interval_s=1.0, missed_heartbeats=3)
    doomed = await start_agent(cp)
    session = await cp.create_session("client-moved", **BLUE)
    player = doomed.player(session)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        seq = await player.send_input({"type": "configure", "configuration": BLUE})
        assert is_blue((await player.wait_for_seq(seq, within_s=5)).image[PROBE[1], PROBE[0]])
        spare = await start_agent(cp)
        renderer = (await doomed.health())["renderer_pid"]
        assert isinstance(renderer, int)
        # The instance's OS dies: its agent and its renderer (our grandchild), by PID.
        os.kill(doomed.process.pid, signal.SIGKILL)
        os.kill(renderer, signal.SIGKILL)
        # Lost after 3 missed heartbeats of 1 s; re-placed on the spare.
        moved = await cp.wait_session(
            session,
            lambda v: (
                v["state"] == "assigned"
                and v["stream"]["signaling_url"].endswith(f"/i/{spare.private_ip}/signal")
            ),
            within_s=20,
        )
    finally:
        await player.close()
    assert moved["session_id"] == session["session_id"]
    again = spare.player(moved)
    await again.connect()
    try:
        frame = await again.wait_first_frame(within_s=15)
        assert not is_blue(frame.image[PROBE[1], PROBE[0]])  # a fresh renderer
        # The frontend configures it as it configured the first one.
        seq = await again.send_input({"type": "configure", "configuration": BLUE})
        assert is_blue((await again.wait_for_seq(seq, within_s=5)).image[PROBE[1], PROBE[0]])
        assert (await cp.get_session(session))["state"] == "connected"
        instance = await cp.instance(doomed.instance_id)
        assert instance is not None and instance["state"] == "lost"
    finally:
        await again.close()
