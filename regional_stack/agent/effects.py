"""The effect runner: carries out what the lifecycle core decided.

`AgentCore` (pure) returns effects; handlers and loops hand them here and never
act on the renderer, the player or the control plane themselves. Events go
into an in-order outbox that `ControlLink.send_events` drains; disconnects and
renderer resets run as one-off tasks, held until done.

Every decision of the core passes through here, so this is also where the
session's story is logged (with `session_id`, the correlation id ops follow
through the control plane and the router) and counted in the agent's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from regional_stack.agent.lifecycle import (
    ENDED_BY_CONTROL_PLANE,
    AgentCore,
    DisconnectPlayer,
    Effect,
    Report,
    ResetRenderer,
)
from regional_stack.agent.metrics import AgentMetrics
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
        core: AgentCore,
        hub: SignallingHub,
        supervisor: RendererSupervisor,
        metrics: AgentMetrics,
    ) -> None:
        self._instance_id = instance_id
        self._region = region
        self._core = core
        self._hub = hub
        self._supervisor = supervisor
        self._metrics = metrics
        self._logged_session: str | None = None
        self._logged_ends = 0
        self.events: asyncio.Queue[AgentEvent] = asyncio.Queue(EVENT_QUEUE_MAX)
        self._oneoffs: set[asyncio.Task[None]] = set()

    def apply(self, effects: list[Effect]) -> None:
        self._note_session_changes()
        for effect in effects:
            if isinstance(effect, Report):
                self.report(effect)
            elif isinstance(effect, DisconnectPlayer):
                close = (
                    closing.session_ended(effect.reason)
                    if effect.final
                    else closing.disconnected_by_streamer(effect.reason)  # REPLACED
                )
                self.spawn(self._hub.disconnect_player(close))
            elif isinstance(effect, ResetRenderer):
                self.spawn(self._supervisor.reset())

    def _note_session_changes(self) -> None:
        """One line when a session is assigned here or the control plane ends it; the
        core says neither as an effect (the agent's own reports are logged in `report`)."""
        session = self._core.session
        current = session.session_id if session else None
        if session is not None and current != self._logged_session:
            log.info("session assigned", extra={"session_id": current, "epoch": session.epoch})
        self._logged_session = current
        for session_id, reason in self._core.ended[self._logged_ends :]:
            self._metrics.session_ended(reason)
            if reason == ENDED_BY_CONTROL_PLANE:
                log.info("session ended by the control plane", extra={"session_id": session_id})
        self._logged_ends = len(self._core.ended)

    def report(self, report: Report) -> None:
        event = AgentEvent(
            instance_id=self._instance_id,
            region=self._region,
            type=report.type,
            session_id=report.session_id,
            epoch=report.epoch,
            detail=report.detail,
        )
        self._metrics.report(report.type)
        log.info(
            "session event %s",
            report.type,
            extra={"session_id": report.session_id, "epoch": report.epoch, "event": report.type,
                   "instance_id": self._instance_id, "detail": report.detail},
        )  # fmt: skip
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
