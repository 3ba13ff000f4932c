"""The effect runner: carries out what the lifecycle core decided.

`AgentCore` (pure) returns effects; handlers and loops hand them here and never
act on the renderer, the player or the control plane themselves. Events go
into an in-order outbox that `ControlLink.send_events` drains; disconnects and
renderer resets run as one-off tasks, held until done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from regional_stack.agent.lifecycle import DisconnectPlayer, Effect, Report, ResetRenderer
from regional_stack.agent.signalling import SignallingHub
from regional_stack.agent.supervisor import RendererSupervisor
from regional_stack.signalling import closing
from streamfleet.wire import AgentEvent

log = logging.getLogger("streamfleet.agent.effects")
EVENT_QUEUE_MAX = 1000


class EffectRunner:
    def __init__(
        self,
        *,
        instance_id: str,
        region: str,
        hub: SignallingHub,
        supervisor: RendererSupervisor,
    ) -> None:
        self._instance_id = instance_id
        self._region = region
        self._hub = hub
        self._supervisor = supervisor
        self.events: asyncio.Queue[AgentEvent] = asyncio.Queue(EVENT_QUEUE_MAX)
        self._oneoffs: set[asyncio.Task[None]] = set()

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Report):
                self.report(effect)
            elif isinstance(effect, DisconnectPlayer):
                self.spawn(self._hub.disconnect_player(closing.session_ended(effect.reason)))
            elif isinstance(effect, ResetRenderer):
                self.spawn(self._supervisor.reset())

    def report(self, report: Report) -> None:
        event = AgentEvent(
            instance_id=self._instance_id,
            region=self._region,
            type=report.type,
            session_id=report.session_id,
            epoch=report.epoch,
            detail=report.detail,
        )
        log.info("event %s session=%s %s", report.type, report.session_id, report.detail)
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            log.error("event queue full; dropping %s", report.type)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """A one-off task, held until done so it is not garbage-collected mid-flight."""
        task = asyncio.create_task(coro)
        self._oneoffs.add(task)
        task.add_done_callback(self._oneoffs.discard)

    async def close(self) -> None:
        tasks = list(self._oneoffs)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
