"""The control plane's composition root: `create_app(settings)` wires everything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from control_plane.api import agents, ops, sessions
from control_plane.api.attestation import Attestor
from control_plane.api.background import run_background
from control_plane.api.context import SERVICES, SETTINGS, Services
from control_plane.api.metrics import Metrics, metrics_middleware
from control_plane.api.openapi import build_openapi
from control_plane.api.problems import problem_middleware
from control_plane.api.queue_feed import QueueFeed
from control_plane.api.security import cors_middleware, head_middleware
from control_plane.broker import Broker
from control_plane.cloud import Ec2Directory
from control_plane.geo import GeoLocator, parse_networks
from control_plane.redis_client import connect_redis
from control_plane.session_secrets import SessionSecrets
from control_plane.settings import ControlPlaneSettings
from streamfleet.tokens import b64url_decode
from streamfleet.wire import Health


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = connect_redis(settings)
    redis.start()
    client = redis.client
    metrics = Metrics()
    session_secrets = SessionSecrets(b64url_decode(settings.agent_token_key.get_secret_value()))
    broker = Broker(
        client,
        settings.region_names,
        settings.broker,
        observer=metrics,
        mint_secret=session_secrets.mint,
        mint_session_secret=session_secrets.mint_session,
    )
    svc = Services(
        settings=settings,
        broker=broker,
        geo=GeoLocator(settings.geoip_db),
        trusted=parse_networks(settings.trusted_proxies),
        keyring=settings.keyring(),
        session_secrets=session_secrets,
        metrics=metrics,
        attestor=Attestor(settings, Ec2Directory(settings.ec2_endpoint_url)),
        queue_feed=QueueFeed(
            broker,
            poll_s=settings.sse_poll_s,
            window_s=settings.broker.queue_rate_window_s,
            fallback_session_s=settings.broker.avg_session_s,
        ),
    )
    app[SERVICES] = svc
    stop = asyncio.Event()
    background = asyncio.create_task(run_background(svc, stop), name="streamfleet-background")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(background, 5)
        except (TimeoutError, asyncio.CancelledError):
            background.cancel()
        await svc.queue_feed.close()
        svc.geo.close()
        await redis.aclose()


async def healthz(request: web.Request) -> web.Response:
    await request.app[SERVICES].broker.reads.ping()
    return web.json_response(Health(status="ok").model_dump(mode="json"))


async def metrics(request: web.Request) -> web.Response:
    rendered: web.Response = request.app[SERVICES].metrics.render()
    return rendered


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi())


def create_app(settings: ControlPlaneSettings) -> web.Application:
    missing = settings.missing_secrets()
    if missing:
        raise ValueError(f"set {', '.join(missing)} (see `streamfleet control-plane --help`)")
    app = web.Application(
        middlewares=[metrics_middleware, cors_middleware, problem_middleware, head_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_services)
    app.add_routes(sessions.routes)
    app.add_routes(agents.routes)
    app.add_routes(ops.routes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/openapi.json", openapi)
    if settings.web_dir is not None:
        app.router.add_static("/web/", settings.web_dir, show_index=False)
    return app
