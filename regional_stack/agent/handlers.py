"""HTTP handlers of the player side: `/signal` (token-checked upgrade) and `/healthz`.

Refusals happen before the upgrade, as HTTP with a JSON body, so a refused
player never holds a socket; docs/pixel-streaming.md lists them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from regional_stack.agent import ice
from regional_stack.agent.context import Agent, agent_of
from regional_stack.agent.lifecycle import Verdict
from regional_stack.signalling.messages import MAX_MESSAGE_BYTES
from streamfleet.edge import PROBLEM, problem_text
from streamfleet.tokens import TokenError, verify

log = logging.getLogger("streamfleet.agent.handlers")


def problem(status: int, kind: str, title: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(problem_text(status, kind, title, detail))
    return body


async def healthz(request: web.Request) -> web.Response:
    """Unauthenticated, so it says how the agent is, never whom it serves: no
    session id, epoch or token (the ops API has those, behind the admin token)."""
    agent = agent_of(request)
    return web.json_response(
        {
            "status": "ok",
            "registered": agent.control.registered,
            "state": agent.core.heartbeat_fields()["state"],
            **agent.health(),
        }
    )


async def signal(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    token = request.headers.get("X-Stream-Token") or request.query.get("token")
    if not token:
        return _refused(agent, 401, "missing_token", "no stream token")
    try:
        claims = verify(token, keys=agent.keyring, now_unix=agent.clock())
    except TokenError as exc:
        return _refused(agent, 401, str(exc.code), exc.detail)
    check = agent.core.check_token(claims, may_refresh=True)
    if check.verdict is Verdict.WAIT:
        # The renderer is restarting (after the last session, or a crash) and the
        # control plane may already have handed this instance to the token's
        # session: hold the player until it is ready rather than refuse it.
        wait_s = min(
            agent.settings.assignment_wait_s, max(0.0, claims.expires_unix - agent.clock())
        )
        if not await agent.until_takes_assignments(wait_s):
            return _not_ready(agent, claims.session_id)
        check = agent.core.check_token(claims, may_refresh=True)
    if check.verdict is not Verdict.REFUSE:
        # Whatever the agent last heard may be seconds old (the session ended, or
        # was given to someone else, since the last heartbeat): ask the control
        # plane now, so no ended session's or stale epoch's token reaches the
        # renderer. A fresh assignment is learnt the same way. If the control
        # plane cannot answer, nobody is let in (fail closed).
        if not await agent.control.heartbeat_once():
            return _refused(
                agent, 503, "unconfirmed", "cannot confirm the assignment now", claims.session_id
            )
        check = agent.core.check_token(claims, may_refresh=False)
    if check.verdict is Verdict.WAIT:  # the renderer went down again meanwhile
        return _not_ready(agent, claims.session_id)
    if check.verdict is not Verdict.ACCEPT:
        kind = "busy" if check.status == 409 else "not_assigned"
        return _refused(agent, check.status, kind, check.reason, claims.session_id)
    # Mark the player present before the first await, so a second player
    # racing this one is refused by check_token.
    agent.effects.apply(agent.core.player_connected(agent.clock()))
    agent.metrics.player("accepted")
    player_id = agent.hub.new_player_id()
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_MESSAGE_BYTES)
    try:
        await ws.prepare(request)
        await agent.hub.player_session(ws, player_id, ice.player_options(agent.settings, claims))
    finally:
        agent.effects.apply(agent.core.player_disconnected(agent.clock()))
    return ws


def _refused(
    agent: Agent,
    status: int,
    kind: str,
    detail: str,
    session_id: str | None = None,
    retry_after_s: int | None = None,
) -> web.Response:
    """Counted by kind and logged (with the session when the token named one), then refused."""
    agent.metrics.player(kind)
    log.info("player refused: %s", kind, extra={"session_id": session_id, "status": status})
    body = {**problem(status, kind.replace("_", "-"), "Stream refused", detail), "field": "token"}
    body["error"] = kind  # the refusal's code, as docs/pixel-streaming.md lists them
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return web.json_response(body, status=status, content_type=PROBLEM, headers=headers)


def _not_ready(agent: Agent, session_id: str) -> web.Response:
    """The renderer is still starting: a refusal players retry (Epic's library does)."""
    return _refused(
        agent, 503, "not_ready", "the renderer is starting; try again", session_id,
        retry_after_s=1,
    )  # fmt: skip


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own refusals (404, 405, ...) as problem+json, like every other error."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = "not-found" if exc.status == 404 else "http-error"
        return web.json_response(
            problem(exc.status, kind, exc.reason), status=exc.status, content_type=PROBLEM
        )
