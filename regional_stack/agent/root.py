"""The agent's composition root: `create_app(settings)` wires everything.

The returned application is the player side (`/signal`, `/healthz`, player
assets) served on the instance's private IP. Its cleanup_ctx builds the agent
(lifecycle core, signalling hub, renderer supervisor, effect runner, control
link, metrics), serves the streamer side on loopback and the metrics on
private_ip:metrics_port when set, starts the renderer and the background
loops, and takes it all down again in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from regional_stack.agent import handlers, ice, loops
from regional_stack.agent.context import AGENT, CLOCK, SETTINGS, Agent
from regional_stack.agent.control import ControlLink
from regional_stack.agent.control_plane_client import ControlPlaneClient
from regional_stack.agent.effects import EffectRunner
from regional_stack.agent.lifecycle import AgentCore
from regional_stack.agent.metrics import AgentMetrics
from regional_stack.agent.settings import AgentSettings
from regional_stack.agent.signalling import SignallingHub
from regional_stack.agent.supervisor import RendererSupervisor, render_argv
from streamfleet.edge import EdgeGuard, EdgeRunner

log = logging.getLogger("streamfleet.agent")


def build_agent(
    settings: AgentSettings, http: aiohttp.ClientSession, clock: Callable[[], float]
) -> Agent:
    s = settings
    core = AgentCore(instance_id=s.instance_id, private_ip=s.private_ip)
    metrics = AgentMetrics()

    # The hub and the supervisor call back into the agent they are part of;
    # the callbacks look `agent` up when they run, after it is built.
    def on_crash(code: int | None, uptime_s: float) -> None:
        detail = {"exit_code": code, "uptime_s": round(uptime_s, 1)}
        agent.effects.apply(core.renderer_crashed(clock(), detail))

    def on_streamer_ready() -> None:
        agent.effects.apply(core.renderer_ready(clock()))
        agent.renderer_ready.set()

    def on_media(state: str) -> None:
        metrics.media_report(state)
        agent.effects.apply(core.media(state, clock()))

    hub = SignallingHub(
        streamer_options=lambda: ice.streamer_options(s, clock()),
        on_streamer_ready=on_streamer_ready,
        on_streamer_gone=lambda: agent.effects.spawn(loops.streamer_gone(agent)),
        on_input=lambda _count: core.input_activity(clock()),
        on_stats=metrics.stats,
        on_media=on_media,
    )
    argv = render_argv(
        s.renderer_command,
        {
            "streamer_url": s.streamer_url(),
            "width": str(s.render_width),
            "height": str(s.render_height),
            "fps": str(s.render_fps),
        },
    )
    supervisor = RendererSupervisor(
        argv, on_crash=on_crash, restart_backoff_s=s.renderer_restart_backoff_s
    )
    effects = EffectRunner(
        instance_id=s.instance_id,
        region=s.region,
        core=core,
        hub=hub,
        supervisor=supervisor,
        metrics=metrics,
    )
    client = ControlPlaneClient(http, s.control_plane_url, s.secret.get_secret_value())
    control = ControlLink(
        client=client,
        settings=s,
        core=core,
        effects=effects,
        clock=clock,
        health=lambda: agent.health(),
        http=http,
    )
    agent = Agent(s, clock, s.keyring(), core, hub, supervisor, effects, control, metrics)
    metrics.watch(agent)
    return agent


async def _agent_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, clock = app[SETTINGS], app[CLOCK]
    http = aiohttp.ClientSession()
    agent = build_agent(settings, http, clock)
    app[AGENT] = agent
    streamer_app = web.Application()
    streamer_app.router.add_get("/{tail:.*}", agent.hub.streamer_ws)
    streamer_runner = web.AppRunner(streamer_app, access_log=None)
    await streamer_runner.setup()
    await web.TCPSite(streamer_runner, settings.streamer_host, settings.streamer_port).start()
    runners = [streamer_runner]
    if settings.metrics_port:
        # Beside the player side, on the private IP, where the region's Prometheus reaches it.
        runners.append(await agent.metrics.serve(settings.private_ip, settings.metrics_port))
    await agent.supervisor.start()
    tasks = [
        asyncio.create_task(agent.control.run(), name="agent-control"),
        asyncio.create_task(agent.control.send_events(), name="agent-events"),
        asyncio.create_task(loops.tick_loop(agent), name="agent-tick"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await agent.effects.close()
        await agent.hub.close()
        await agent.supervisor.close()
        for runner in reversed(runners):
            await runner.cleanup()
        await http.close()


async def _close_sockets(app: web.Application) -> None:
    """Close the open WebSockets first, so shutdown does not wait on them."""
    agent = app.get(AGENT)
    if agent is not None:
        await agent.hub.close()


def create_app(
    settings: AgentSettings, *, clock: Callable[[], float] = time.time
) -> web.Application:
    app = web.Application(middlewares=[handlers.problem_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app.cleanup_ctx.append(_agent_ctx)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/signal", handlers.signal)
    app.router.add_get("/healthz", handlers.healthz)
    assets = settings.player_assets_dir
    if assets:
        index = Path(assets) / "index.html"

        async def page(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(index)

        app.router.add_get("/", page)
        app.router.add_static("/assets/", assets)
    return app


async def run(settings: AgentSettings, stop: asyncio.Event) -> None:
    guard = EdgeGuard(
        header_timeout_s=settings.header_timeout_s,
        max_connections_per_ip=settings.max_connections_per_ip,
    )
    runner = EdgeRunner(create_app(settings), guard)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.private_ip, settings.port).start()
        log.info(
            "agent %s listening on %s:%s", settings.instance_id, settings.private_ip, settings.port
        )
        await stop.wait()
    finally:
        await runner.cleanup()
