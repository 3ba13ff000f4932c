"""The agent's time-driven work: the lifecycle tick, the renderer start watchdog,
and what to do when the streamer's connection drops."""

from __future__ import annotations

import asyncio
import logging
import time

from regional_stack.agent.context import Agent
from regional_stack.signalling import closing

log = logging.getLogger("streamfleet.agent.loops")

# How long a dropped streamer connection is given to turn out as a process
# exit (handled as a crash) before it is treated as a connection drop only.
STREAMER_EXIT_GRACE_S = 1.0


async def tick_loop(agent: Agent) -> None:
    while True:
        agent.effects.apply(agent.core.tick(agent.clock()))
        check_renderer_start(agent)
        await asyncio.sleep(agent.settings.tick_interval_s)


def check_renderer_start(agent: Agent) -> None:
    """A renderer that runs but never connects as a streamer is restarted."""
    sup, s = agent.supervisor, agent.settings
    if agent.core.renderer_up or sup.pid is None or sup.resetting:
        return
    if time.monotonic() - sup.started_at > s.renderer_ready_timeout_s:
        log.error(
            "renderer pid=%s did not connect to %s within %.0f s; restarting it",
            sup.pid,
            s.streamer_url(),
            s.renderer_ready_timeout_s,
        )
        agent.effects.spawn(sup.reset())


async def streamer_gone(agent: Agent) -> None:
    """The streamer's socket closed while a player was connected.

    A renderer that died is the crash path (the session ends as instance_lost,
    a final close). One that lives on lost only its signalling connection:
    close the player's socket as Epic's server does, with a code Epic's library
    reconnects after; the session waits for it within the reconnect window.
    """
    if await agent.supervisor.wait_exit(STREAMER_EXIT_GRACE_S):
        return
    if agent.supervisor.resetting:
        return
    await agent.hub.disconnect_player(closing.streamer_gone())
