"""The agent's link to the control plane: registration, heartbeats, events.

Registration retries until it succeeds and brings the session timeouts
(`RegisterResponse`), so the agent enforces what the control plane decided.
Heartbeat answers are applied in the order they were asked (one at a time);
a 404 means the control plane lost us (e.g. its Redis was replaced), so we
register again, with the highest epoch we were assigned and the session we
still serve, which the control plane rebuilds (docs/operations.md). Events are delivered in order, each under the retry policy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from regional_stack.agent.control_plane_client import ControlPlaneClient, ControlPlaneError
from regional_stack.agent.effects import EffectRunner
from regional_stack.agent.identity import ImdsError, fetch_identity, load_nonce
from regional_stack.agent.lifecycle import AgentCore, Report, Timeouts
from regional_stack.agent.retry import control_plane_retry
from regional_stack.agent.settings import AgentSettings
from streamfleet.lifecycle import InstanceState
from streamfleet.wire import HeartbeatRequest, RegisterRequest

log = logging.getLogger("streamfleet.agent.control")


class ControlLink:
    def __init__(
        self,
        *,
        client: ControlPlaneClient,
        settings: AgentSettings,
        core: AgentCore,
        effects: EffectRunner,
        clock: Callable[[], float],
        health: Callable[[], dict[str, Any]],
        http: aiohttp.ClientSession,
    ) -> None:
        self._client = client
        self._settings = settings
        self._core = core
        self._effects = effects
        self._clock = clock
        self._health = health
        self._http = http
        self._nonce = load_nonce(settings.nonce_file)
        self._lock = asyncio.Lock()
        self.registered = False
        self.heartbeat_interval_s = settings.heartbeat_interval_s

    async def run(self) -> None:
        """Register, then heartbeat every period; register again when told to."""
        while True:
            await self.register()
            while self.registered:
                await self.heartbeat_once()
                if self.registered:  # else register at once: our session is waiting
                    await asyncio.sleep(self.heartbeat_interval_s)

    async def register(self) -> None:
        s = self._settings
        async for attempt in control_plane_retry(forever=True):
            with attempt:
                try:
                    identity = await fetch_identity(self._http, s.imds_url)
                except ImdsError as exc:
                    raise ControlPlaneError(0, str(exc)) from exc  # retried like one
                req = RegisterRequest(
                    instance_id=s.instance_id,
                    region=s.region,
                    private_ip=s.private_ip,
                    instance_type=s.instance_type,
                    version=s.version,
                    identity_document=identity.document,
                    identity_signature=identity.signature,
                    nonce=self._nonce,
                    # Fencing and the live stream survive the control plane's
                    # Redis losing data: docs/operations.md "Redis loses data".
                    max_epoch=self._core.max_epoch,
                    session=self._core.served(),
                )
                answer = await self._client.register(req)
        self._core.timeouts = Timeouts.from_register(answer)
        self.heartbeat_interval_s = answer.heartbeat_interval_s
        self.registered = True
        log.info("registered; %s", self._core.timeouts)
        if self._core.renderer_up and self._core.state is InstanceState.READY:
            # Registration (re)starts us as booting over there; say we are ready.
            self._effects.report(Report("ready", None, None))

    async def heartbeat_once(self) -> bool:
        """One heartbeat, its answer applied; False when it failed."""
        async with self._lock:
            fields = self._core.heartbeat_fields()
            req = HeartbeatRequest(
                instance_id=self._settings.instance_id,
                region=self._settings.region,
                state=fields["state"],
                session_id=fields["session_id"],
                epoch=fields["epoch"],
                max_epoch=fields["max_epoch"],
                ended=fields["ended"],
                health=self._health(),
            )
            try:
                answer = await self._client.heartbeat(req)
            except ControlPlaneError as exc:
                log.warning("heartbeat failed: %s", exc)
                if exc.status == 404:
                    self.registered = False
                return False
            now = self._clock()
            self._effects.apply(self._core.apply_assignment(answer.assignment, now))
            for command in answer.commands:
                self._effects.apply(self._core.command(command, now))
            return True

    async def send_events(self) -> None:
        """Deliver queued events in order; a refused or undeliverable one is logged and dropped
        (the next heartbeat carries the state it was about)."""
        while True:
            event = await self._effects.events.get()
            try:
                async for attempt in control_plane_retry():
                    with attempt:
                        await self._client.event(event)
            except ControlPlaneError as exc:
                log.error("event %s not delivered: %s", event.type, exc)
