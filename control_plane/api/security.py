"""Who is calling: bearer secrets, client IP, rate limit, CORS."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from control_plane.api.context import SERVICES, services
from control_plane.api.problems import Problem
from control_plane.geo import client_ip
from control_plane.session_secrets import MAX_SECRET_CHARS

# Every secret we issue (session secrets, admin and agent tokens) is printable
# ASCII; anything else is no credential of ours and is refused before comparing.
# The longest is an s2 session secret (its payload carries the configuration).
_CREDENTIAL = re.compile(rf"^[\x21-\x7e]{{1,{MAX_SECRET_CHARS}}}$")
# aiohttp decodes the request head as UTF-8 with surrogateescape: a byte that is
# not UTF-8 arrives as a lone surrogate, which no encoder downstream accepts.
_NOT_UTF8 = re.compile("[\ud800-\udfff\x00]")


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not _CREDENTIAL.match(token.strip()):
        raise Problem(
            401, "unauthorized", "Bearer token required", "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="streamfleet"'},
        )  # fmt: skip
    return token.strip()


def same_secret(given: str, expected: str) -> bool:
    if not expected or not _CREDENTIAL.match(given):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def head_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse a request whose path, query or headers are not UTF-8 text (400)."""
    if _NOT_UTF8.search(request.raw_path) or _NOT_UTF8.search(request.path):
        raise Problem(400, "invalid-encoding", "Request path is not UTF-8", field="path")
    for name, value in request.headers.items():
        if _NOT_UTF8.search(name) or _NOT_UTF8.search(value):
            field = name if name.isascii() and name.isprintable() else None
            raise Problem(400, "invalid-encoding", "Header is not UTF-8", field=field)
    for name, value in request.query.items():
        if _NOT_UTF8.search(name) or _NOT_UTF8.search(value):
            raise Problem(400, "invalid-encoding", "Query is not UTF-8", field="query")
    return await handler(request)


def require_admin(request: web.Request) -> None:
    token = bearer(request)
    if not same_secret(token, services(request).settings.admin_token.get_secret_value()):
        raise Problem(403, "forbidden", "Not an admin token")


def request_client_ip(request: web.Request) -> str | None:
    svc = services(request)
    if svc.settings.demo_visit_from and "X-Demo-Client-IP" in request.headers:
        # Local demo only (off unless STREAMFLEET_DEMO_VISIT_FROM=true): lets the
        # configurator page pretend to visit from elsewhere.
        return request.headers["X-Demo-Client-IP"].strip()[:45]
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return client_ip(peer[0] if peer else None, request.headers.get("X-Forwarded-For"), svc.trusted)


RATE_WINDOW_MS = 60_000


def rate_budget(request: web.Request) -> tuple[str, int, int]:
    """The session API's budget for this request: (client IP, allowed, window ms).
    Counted in Redis by the create's first script (shared by every replica)."""
    svc = services(request)
    ip = request_client_ip(request) or "unknown"
    return ip, svc.settings.rate_limit_per_minute, RATE_WINDOW_MS


def rate_limited(request: web.Request, reset_ms: int) -> Problem:
    limit = services(request).settings.rate_limit_per_minute
    return Problem(
        429, "rate-limited", "Too many requests", f"at most {limit} per minute",
        headers={"Retry-After": str(max(1, reset_ms // 1000 + 1))},
    )  # fmt: skip


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[SERVICES].settings.cors_origins
    if (
        request.method == "OPTIONS"
        and allowed
        and "Access-Control-Request-Method" in request.headers
    ):
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if allowed:
                exc.headers["Access-Control-Allow-Origin"] = origin or ""
                exc.headers["Vary"] = "Origin"
            raise
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin or ""
        response.headers["Vary"] = "Origin"
    return response
