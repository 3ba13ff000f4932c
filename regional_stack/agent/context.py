"""Typed application state of the agent: what handlers and loops may reach, under web.AppKey."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from regional_stack.agent.control import ControlLink
from regional_stack.agent.effects import EffectRunner
from regional_stack.agent.lifecycle import AgentCore
from regional_stack.agent.metrics import AgentMetrics
from regional_stack.agent.settings import AgentSettings
from regional_stack.agent.signalling import SignallingHub
from regional_stack.agent.supervisor import RendererSupervisor


@dataclass
class Agent:
    """Everything the agent is made of, built once per app in cleanup_ctx (root.py)."""

    settings: AgentSettings
    clock: Callable[[], float]
    keyring: dict[str, bytes]
    core: AgentCore
    hub: SignallingHub
    supervisor: RendererSupervisor
    effects: EffectRunner
    control: ControlLink
    metrics: AgentMetrics
    # Set each time the renderer becomes ready (`renderer_ready` applied); players
    # held for their assignment wake on it.
    renderer_ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def until_takes_assignments(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until the core takes assignments; True if it does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.core.takes_assignments:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self.renderer_ready.clear()  # no await since the check: nothing is missed
            try:
                await asyncio.wait_for(self.renderer_ready.wait(), remaining)
            except TimeoutError:
                return self.core.takes_assignments
        return True

    def health(self) -> dict[str, Any]:
        return {
            "renderer_up": self.core.renderer_up,
            "renderer_pid": self.supervisor.pid,
            "renderer_restarts": self.supervisor.restarts,
            "renderer_crashes": self.supervisor.crashes,
            "player_connected": self.hub.player is not None,
        }


SETTINGS = web.AppKey("settings", AgentSettings)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
AGENT = web.AppKey("agent", Agent)


def agent_of(request: web.Request) -> Agent:
    return request.app[AGENT]
