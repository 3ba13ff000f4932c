"""The agent's composition root: settings -> lifecycle core + hub + supervisor + control plane.

Two aiohttp applications: the player side on the instance's private IP
(`/signal`, `/healthz`, player assets) and the streamer side on loopback (the
renderer's signalling connection). Background tasks: registration and
heartbeats, the lifecycle tick, and an in-order event sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from regional_stack.agent.control_plane_client import ControlPlaneClient, ControlPlaneError
from regional_stack.agent.lifecycle import (
    AgentCore,
    DisconnectPlayer,
    Effect,
    Report,
    ResetRenderer,
    Timeouts,
    Verdict,
)
from regional_stack.agent.metrics import AgentMetrics
from regional_stack.agent.settings import AgentSettings
from regional_stack.agent.signalling import SignallingHub
from regional_stack.agent.supervisor import RendererSupervisor, render_argv
from streamfleet import turn
from streamfleet.lifecycle import InstanceState
from streamfleet.tokens import TokenError, verify

log = logging.getLogger("streamfleet.agent")

# The renderer's own TURN credential outlives any one session: the renderer
# connects once and waits, possibly for hours, for its next player.
RENDERER_TURN_TTL_S = 24 * 3600
EVENT_QUEUE_MAX = 1000


class Agent:
    def __init__(self, settings: AgentSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = settings.keyring()
        self.core = AgentCore(
            instance_id=settings.instance_id,
            private_ip=settings.private_ip,
            timeouts=Timeouts(
                claim_ttl_s=settings.claim_ttl_s,
                reconnect_window_s=settings.reconnect_window_s,
                idle_timeout_s=settings.idle_timeout_s,
                max_duration_s=settings.max_duration_s,
            ),
        )
        self.metrics = AgentMetrics()
        self.hub = SignallingHub(
            streamer_options=self._streamer_options,
            on_streamer_ready=lambda: self._apply(self.core.renderer_ready(self.clock())),
            on_input_activity=lambda: self.core.input_activity(self.clock()),
            on_stats=self.metrics.stats,
        )
        argv = render_argv(
            settings.renderer_command,
            {
                "streamer_url": settings.streamer_url(),
                "width": str(settings.render_width),
                "height": str(settings.render_height),
                "fps": str(settings.render_fps),
            },
        )
        self.supervisor = RendererSupervisor(
            argv,
            on_crash=self._renderer_crashed,
            restart_backoff_s=settings.renderer_restart_backoff_s,
        )
        self.registered = False
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(EVENT_QUEUE_MAX)
        self._hb_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._oneoffs: set[asyncio.Task[None]] = set()
        self._runners: list[web.AppRunner] = []
        self._http: aiohttp.ClientSession | None = None
        self._cp: ControlPlaneClient | None = None
        self.heartbeat_interval_s = settings.heartbeat_interval_s
        self._logged_session: str | None = None
        self._logged_ends = 0
        self.metrics.watch(self)

    # -- wiring ------------------------------------------------------------------
    def player_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/signal", self.handle_player)
        app.router.add_get("/healthz", self.handle_healthz)
        assets = self.settings.player_assets_dir
        if assets:
            index = Path(assets) / "index.html"

            async def page(_: web.Request) -> web.StreamResponse:
                return web.FileResponse(index)

            app.router.add_get("/", page)
            app.router.add_static("/assets/", assets)
        return app

    def streamer_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.hub.streamer_ws)
        return app

    async def start(self) -> None:
        s = self.settings
        self._http = aiohttp.ClientSession()
        self._cp = ControlPlaneClient(self._http, s.control_plane_url, s.secret.get_secret_value())
        for app, host, port in (
            (self.streamer_app(), s.streamer_host, s.streamer_port),
            (self.player_app(), s.private_ip, s.port),
        ):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            self._runners.append(runner)
        if s.metrics_port:
            self._runners.append(await self.metrics.serve(s.private_ip, s.metrics_port))
        await self.supervisor.start()
        for coro in (self._control_loop(), self._tick_loop(), self._event_sender()):
            self._tasks.append(asyncio.create_task(coro))
        log.info("agent %s listening on %s:%s", s.instance_id, s.private_ip, s.port)

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._oneoffs]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.hub.close()
        await self.supervisor.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        if self._http is not None:
            await self._http.close()

    def _streamer_options(self) -> dict[str, Any]:
        s = self.settings
        options: dict[str, Any] = {"iceTransportPolicy": s.ice_transport_policy}
        secret = s.turn_secret.get_secret_value()
        if s.turn_uris and secret:
            expires = int(self.clock()) + RENDERER_TURN_TTL_S
            options["iceServers"] = turn.ice_servers(s.turn_uris, secret, s.instance_id, expires)
        return options

    # -- effects -----------------------------------------------------------------
    def _apply(self, effects: list[Effect]) -> None:
        self._log_session_changes()
        for effect in effects:
            if isinstance(effect, Report):
                self._enqueue_event(effect)
            elif isinstance(effect, DisconnectPlayer):
                self._spawn(self.hub.disconnect_player(effect.reason))
            elif isinstance(effect, ResetRenderer):
                self._spawn(self.supervisor.reset())

    def _log_session_changes(self) -> None:
        """One line when a session is assigned here or the control plane ends it (the
        agent's own reports are logged as they are queued, in `_enqueue_event`)."""
        session = self.core.session
        current = session.session_id if session else None
        if session is not None and current != self._logged_session:
            log.info("session assigned", extra={"session_id": current, "epoch": session.epoch})
        self._logged_session = current
        for session_id, reason in self.core.ended[self._logged_ends :]:
            self.metrics.session_ended(reason)
            if reason == "ended_by_control_plane":
                log.info("session ended by the control plane", extra={"session_id": session_id})
        self._logged_ends = len(self.core.ended)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """A one-off task, held until done so it is not garbage-collected mid-flight."""
        task = asyncio.create_task(coro)
        self._oneoffs.add(task)
        task.add_done_callback(self._oneoffs.discard)

    def _enqueue_event(self, report: Report) -> None:
        body: dict[str, Any] = {
            "instance_id": self.settings.instance_id,
            "region": self.settings.region,
            "type": report.type,
            "session_id": report.session_id,
            "epoch": report.epoch,
        }
        if report.detail:
            body["detail"] = report.detail
        self.metrics.report(report.type)
        log.info(
            "session event %s",
            report.type,
            extra={"session_id": report.session_id, "epoch": report.epoch, "event": report.type,
                   "instance_id": self.settings.instance_id, "detail": report.detail},
        )  # fmt: skip
        try:
            self._events.put_nowait(body)
        except asyncio.QueueFull:
            log.error("event queue full; dropping %s", report.type)

    def _renderer_crashed(self, code: int | None, uptime_s: float) -> None:
        detail = {"exit_code": code, "uptime_s": round(uptime_s, 1)}
        self._apply(self.core.renderer_crashed(self.clock(), detail))
        if self.hub.player is not None:
            self._spawn(self.hub.disconnect_player("renderer crashed"))

    # -- background loops ---------------------------------------------------------
    async def _control_loop(self) -> None:
        while True:
            await self._register()
            while self.registered:
                await self.heartbeat_once()
                await asyncio.sleep(self.heartbeat_interval_s)

    async def _register(self) -> None:
        assert self._cp is not None
        s = self.settings
        delay = 0.2
        while not self.registered:
            try:
                answer = await self._cp.register(
                    instance_id=s.instance_id,
                    region=s.region,
                    private_ip=s.private_ip,
                    instance_type=s.instance_type,
                    version=s.version,
                )
                self.registered = True
                interval = answer.get("heartbeat_interval_s")
                if isinstance(interval, int | float) and interval > 0:
                    self.heartbeat_interval_s = float(interval)
            except ControlPlaneError as exc:
                log.warning("register failed: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self.core.renderer_up and self.core.state is InstanceState.READY:
            # Registration (re)starts us as booting over there; say we are ready.
            self._enqueue_event(Report("ready", None, None))

    async def heartbeat_once(self) -> bool:
        """One heartbeat, answers applied in the order they were asked (hence the lock)."""
        assert self._cp is not None
        async with self._hb_lock:
            body = {
                "instance_id": self.settings.instance_id,
                "region": self.settings.region,
                **self.core.heartbeat_fields(),
                "health": self.health(),
            }
            try:
                answer = await self._cp.heartbeat(body)
            except ControlPlaneError as exc:
                log.warning("heartbeat failed: %s", exc)
                if exc.status == 404:
                    # The control plane lost us (e.g. its Redis was replaced): register again.
                    self.registered = False
                return False
            now = self.clock()
            self._apply(self.core.apply_assignment(answer.assignment, now))
            for command in answer.commands:
                self._apply(self.core.command(command, now))
            return True

    async def _tick_loop(self) -> None:
        while True:
            self._apply(self.core.tick(self.clock()))
            self._check_renderer_start()
            await asyncio.sleep(self.settings.tick_interval_s)

    def _check_renderer_start(self) -> None:
        """A renderer that runs but never connects as a streamer is restarted."""
        sup = self.supervisor
        if self.core.renderer_up or sup.pid is None or sup.resetting:
            return
        if time.monotonic() - sup.started_at > self.settings.renderer_ready_timeout_s:
            log.error(
                "renderer pid=%s did not connect to %s within %.0f s; restarting it",
                sup.pid,
                self.settings.streamer_url(),
                self.settings.renderer_ready_timeout_s,
            )
            self._spawn(sup.reset())

    async def _event_sender(self) -> None:
        assert self._cp is not None
        while True:
            body = await self._events.get()
            delay = 0.1
            for _ in range(8):
                try:
                    await self._cp.event(body)
                    break
                except ControlPlaneError as exc:
                    if 400 <= exc.status < 500:
                        log.error("event %s refused: %s", body["type"], exc)
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 3.0)

    # -- HTTP ----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "renderer_up": self.core.renderer_up,
            "renderer_pid": self.supervisor.pid,
            "renderer_restarts": self.supervisor.restarts,
            "renderer_crashes": self.supervisor.crashes,
            "player_connected": self.hub.player is not None,
        }

    async def handle_healthz(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "instance_id": self.settings.instance_id,
                "registered": self.registered,
                **self.core.heartbeat_fields(),
                **self.health(),
            }
        )

    async def handle_player(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("X-Stream-Token") or request.query.get("token")
        if not token:
            return self._refused(401, "missing_token", "no stream token")
        try:
            claims = verify(token, keys=self.keys, now_unix=self.clock())
        except TokenError as exc:
            return self._refused(401, str(exc.code), exc.detail)
        check = self.core.check_token(claims, may_refresh=True)
        if check.verdict is Verdict.REFRESH:
            # A fresh assignment the periodic heartbeat has not seen yet: ask now,
            # so the first frame does not wait for the next heartbeat.
            await self.heartbeat_once()
            check = self.core.check_token(claims, may_refresh=False)
        if check.verdict is not Verdict.ACCEPT:
            kind = "busy" if check.status == 409 else "not_assigned"
            return self._refused(check.status, kind, check.reason, claims.session_id)
        # Mark the player present before the first await, so a second player
        # racing this one is refused by check_token.
        self._apply(self.core.player_connected(self.clock()))
        self.metrics.player("accepted")
        player_id = self.hub.new_player_id()
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=64 * 1024)
        try:
            await ws.prepare(request)
            await self.hub.player_session(ws, player_id)
        finally:
            self._apply(self.core.player_disconnected(self.clock()))
        return ws

    def _refused(
        self, status: int, kind: str, detail: str, session_id: str | None = None
    ) -> web.Response:
        self.metrics.player(kind)
        log.info("player refused: %s", kind, extra={"session_id": session_id, "status": status})
        return _refuse(status, kind, detail)


def _refuse(status: int, kind: str, detail: str) -> web.Response:
    return web.json_response({"error": kind, "detail": detail}, status=status)


async def run(settings: AgentSettings, stop: asyncio.Event) -> None:
    agent = Agent(settings)
    await agent.start()
    try:
        await stop.wait()
    finally:
        await agent.stop()
