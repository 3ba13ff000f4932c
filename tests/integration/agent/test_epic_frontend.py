"""What Epic's unmodified frontend library needs from the agent, with the real stub and coturn.

The player here behaves as Epic's library does: it takes its ICE servers from
the agent's `config` message and never sends streamfleet's `inputActivity`;
its input is Epic's own data-channel messages.
"""

from __future__ import annotations

import asyncio
import time

from regional_stack.renderer import epic_protocol
from simulators.player import SignallingRefused, StreamEnded
from streamfleet import turn
from tests.integration.agent.conftest import AgentFactory, ControlPlaneFactory

IDLE_S = 3.0


async def test_config_carries_the_sessions_relay_ice_servers(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp)
    session = await cp.create_session("client-epic-ice")
    player = agent.player(session, ice_from_config=True)
    await player.connect()
    try:
        # Relay-only with TURN servers from nowhere but `config`: frames prove they work.
        await player.wait_first_frame(within_s=15)
        assert player.config is not None
        assert player.config["protocolVersion"] == "1.3.0"
        options = player.config["peerConnectionOptions"]
        assert options["iceTransportPolicy"] == "relay"
        # The same short-lived per-session credential the session API hands out.
        assert options["iceServers"] == session["ice_servers"]
        (server,) = options["iceServers"]
        expiry, _, name = server["username"].partition(":")
        assert name == session["session_id"]
        assert time.time() < int(expiry) == turn.credential_expiry(server["username"])
    finally:
        await player.close()


async def test_epic_input_alone_keeps_the_session_and_a_silent_tab_ends_idle(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane(idle_timeout_s=IDLE_S)
    agent = await start_agent(cp)
    session = await cp.create_session("client-epic-idle")
    player = agent.player(session, ice_from_config=True, report_activity=False)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        # Epic mouse moves for more than twice the idle timeout, and nothing else.
        until = time.monotonic() + 2.5 * IDLE_S
        for i in range(40):  # bounded: ~10 s at most
            if time.monotonic() >= until:
                break
            await player.send_raw(epic_protocol.encode("MouseMove", 100 + i, 90, 2, 0))
            await asyncio.sleep(0.25)
        assert player.failure is None, player.failure
        assert (await cp.get_session(session))["state"] == "connected"
        # Now silent: ended idle, with a close Epic's library treats as final.
        silent_from = time.monotonic()
        ended = await player.wait_closed(within_s=IDLE_S + 5)
        assert isinstance(ended, StreamEnded) and ended.final and ended.end_reason == "idle"
        assert time.monotonic() - silent_from >= IDLE_S - 1.5
    finally:
        await player.close()
    assert await cp.wait_ended(session) == "idle"


async def test_a_session_ended_elsewhere_closes_final_once(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp)
    session = await cp.create_session("client-epic-elsewhere")
    player = agent.player(session, ice_from_config=True, report_activity=False)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
        await cp.delete_session(session)  # the user ended it in another tab
        ended = await player.wait_closed(within_s=10)
        # Final for Epic's library; the session API has the exact reason.
        assert isinstance(ended, StreamEnded) and ended.final
        assert ended.end_reason == "ended_by_control_plane"
    finally:
        await player.close()
    assert await cp.wait_ended(session) == "client_ended"
    # A reconnect (what the library would try after a non-final close) is refused.
    again = agent.player(session)
    try:
        await again.connect()
        raise AssertionError("an ended session's token was accepted")
    except SignallingRefused as exc:
        assert exc.status == 403
    finally:
        await again.close()
