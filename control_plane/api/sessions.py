"""Session API (frontend -> control plane): create, read, follow, end."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from typing import Any

from aiohttp import web

from control_plane.api.context import Services, services
from control_plane.api.problems import Problem
from control_plane.api.security import (
    bearer,
    rate_budget,
    rate_limited,
    request_client_ip,
    same_secret,
)
from control_plane.domain import Placement, RateLimited, Session, SessionExpired, UnknownSession
from control_plane.placement import Site, rank_regions
from streamfleet import strict_json, tokens, turn
from streamfleet.ids import is_session_id
from streamfleet.lifecycle import EndReason, SessionState
from streamfleet.wire import CreateSessionRequest, SessionView

routes = web.RouteTableDef()
# A rebuild waits one heartbeat period at most; this much more covers the calls.
_REBUILD_SLACK_S = 2.0
# Session state changes, one line each, with `session_id` as the correlation id
# the agent and the router log too. Never the session secret or a token.
log = logging.getLogger("streamfleet.control_plane.sessions")


def iso(ms: float) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


async def read_json(request: web.Request) -> Any:
    """The body, parsed strictly (streamfleet.strict_json), before any authentication work."""
    if request.content_type != "application/json":
        raise Problem(415, "unsupported-media-type", "Send application/json")
    settings = services(request).settings
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            raw = await request.read()
    except TimeoutError:
        late = Problem(408, "request-timeout", "Request body not received in time")
        late.force_close()  # the rest of the body may still come: this connection is done
        raise late from None
    try:
        return strict_json.loads(raw, max_bytes=settings.max_body_bytes)
    except strict_json.JsonRefused as exc:
        raise Problem(
            400, "invalid-json", "Body is not valid JSON", exc.reason, field=exc.field
        ) from None


def view(
    svc: Services, s: Session, p: Placement | None = None, *, with_secret: bool = False
) -> SessionView:
    body: dict[str, Any] = {"session_id": s.session_id, "state": s.state.value}
    if with_secret:
        body["session_secret"] = s.secret
    if s.state in (SessionState.ASSIGNED, SessionState.CONNECTED) and s.region and s.instance_id:
        assert s.private_ip is not None and s.epoch is not None
        expires = int(s.created_ms / 1000 + svc.settings.session_max_duration_s)
        region = svc.settings.region(s.region)
        kid = svc.settings.signing_kid()
        token = tokens.sign(
            tokens.StreamClaims(s.session_id, s.instance_id, s.private_ip, s.epoch, expires),
            kid=kid, key=svc.keyring[kid],
        )  # fmt: skip
        base = f"{region.router_url.rstrip('/')}/i/{s.private_ip}/"
        ws_base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        body.update(
            region=s.region,
            stream={"url": base, "signaling_url": ws_base + "signal", "token": token, "expires_at": iso(expires * 1000)},
            ice_servers=turn.ice_servers(
                region.turn_uris, svc.settings.turn_secret.get_secret_value(), s.session_id, expires
            ),
            claim_expires_at=iso(s.claim_deadline_ms) if s.claim_deadline_ms else None,
        )  # fmt: skip
    elif s.state is SessionState.QUEUED and p is not None:
        body.update(position=p.position, estimated_wait_s=p.estimated_wait_s)
    elif s.state is SessionState.ENDED:
        body["end_reason"] = s.end_reason
    return SessionView.model_validate(body)


async def own_session(
    request: web.Request, *, secret: str | None = None, end: bool = False
) -> Session:
    svc = services(request)
    given = secret if secret is not None else bearer(request)
    sid = request.match_info["session_id"]
    try:
        s: Session | None = await svc.broker.get_session(sid)
    except UnknownSession:
        s = await rebuilt(svc, sid, given, end=end)
    # Unknown id and wrong secret look the same: no oracle for session ids. The
    # secret is checked by its key (it outlives the session's hash in Redis:
    # control_plane/session_secrets.py); a stored random one (a session from
    # before derived secrets) still counts.
    if s is None or not (
        svc.session_secrets.verify(s.session_id, given) or same_secret(given, s.secret)
    ):
        raise unknown_session()
    return s


def unknown_session() -> Problem:
    """The one answer for an unknown id and for a wrong secret (no oracle)."""
    return Problem(
        404, "unknown-session", "Unknown session", "no such session for this secret",
        field="session_id",
    )  # fmt: skip


async def rebuilt(svc: Services, sid: str, given: str, *, end: bool = False) -> Session | None:
    """Redis does not know the session: a genuine s2 secret (its facts signed
    in) puts its waiting user back in line, or, with `end`, records it ended
    (docs/operations.md "Redis loses data"). Not before one heartbeat period
    since a read first found it missing (an agent may still report it
    streaming): this waits out the rest of it, bounded. None when the secret
    carries no facts for this id (s1, forged, another session's) or it cannot
    be rebuilt; SessionExpired (410) when too old."""
    facts = svc.session_secrets.facts(sid, given)
    if facts is None:
        return None
    broker = svc.broker
    deadline = time.monotonic() + broker.settings.heartbeat_interval_s + _REBUILD_SLACK_S
    while True:
        got = await broker.rebuild_session(facts, given, end=end)
        if not got.wait_ms or time.monotonic() >= deadline:
            break
        # Meanwhile one read a poll: the agent's report may bring it back first.
        until = min(time.monotonic() + got.wait_ms / 1000, deadline)
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, svc.settings.sse_poll_s))
            with contextlib.suppress(UnknownSession):
                return await broker.get_session(sid)
    s = got.session
    if s is not None:
        log.info(
            "session rebuilt from its secret",
            extra={"session_id": sid, "state": s.state.value, "region": s.region},
        )
    return s


async def queued_view(svc: Services, s: Session) -> SessionView:
    position, wait = await svc.broker.queue_position(s)
    return view(svc, s, Placement(s, position=position, estimated_wait_s=wait))


def dump(v: SessionView) -> dict[str, Any]:
    return v.model_dump(mode="json", exclude_none=True)


@routes.post("/v1/sessions")
async def create_session(request: web.Request) -> web.Response:
    svc = services(request)
    req = CreateSessionRequest.model_validate(await read_json(request))
    for name in req.latencies_ms or {}:
        if name not in svc.settings.region_names:
            raise Problem(
                422,
                "unknown-region",
                "Unknown region",
                f"latencies_ms names {name}",
                field=f"latencies_ms.{name}",
            )
    location = svc.geo.locate(request_client_ip(request))
    ranking = rank_regions(
        [Site(r.name, r.geography, r.lat, r.lon) for r in svc.settings.regions],
        location,
        default_order=svc.settings.default_region_order,
        latencies_ms=req.latencies_ms,
        constrained=svc.constrained,
        cross_geography=svc.settings.cross_geography,
        max_plausible_latency_ms=svc.settings.max_plausible_latency_ms,
    )
    started = time.perf_counter()
    try:
        # The rate limit and the arrival count travel in the create's first script.
        placed = await svc.broker.create_session(
            req.client_id, ranking.first_try, queue_regions=ranking.queue_in,
            relax_to=ranking.later, model=req.model, configuration=req.configuration,
            rate=rate_budget(request),
        )  # fmt: skip
    except RateLimited as exc:
        raise rate_limited(request, exc.reset_ms) from None
    svc.metrics.observe_assignment(placed, time.perf_counter() - started)
    if not placed.existing:
        s = placed.session
        log.info(
            "session %s", s.state.value,
            extra={"session_id": s.session_id, "state": s.state.value, "region": s.region,
                   "instance_id": s.instance_id, "epoch": s.epoch},
        )  # fmt: skip
    v = view(svc, placed.session, placed, with_secret=True)
    status = 201 if placed.assigned else 202 if placed.session.state is SessionState.QUEUED else 200
    headers = {"Location": f"/v1/sessions/{placed.session.session_id}"}
    if placed.existing:
        headers["Idempotent-Replayed"] = "true"
    return web.json_response(dump(v), status=status, headers=headers)


@routes.get("/v1/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    svc = services(request)
    s = await own_session(request)
    v = await queued_view(svc, s) if s.state is SessionState.QUEUED else view(svc, s)
    return web.json_response(dump(v))


@routes.delete("/v1/sessions/{session_id}")
async def delete_session(request: web.Request) -> web.Response:
    svc = services(request)
    sid = request.match_info["session_id"]
    if not (is_session_id(sid) and svc.session_secrets.verify(sid, bearer(request))):
        sid = (await own_session(request)).session_id  # a stored secret: read to check it
    # A keyed secret proves itself without a read: the end is the first call
    # (end + release: two round trips).
    try:
        result = await svc.broker.end_session(sid, EndReason.CLIENT_ENDED)
    except UnknownSession:
        # Redis does not know it: with a genuine s2 secret it is recorded ended (so a
        # read racing this DELETE cannot bring it back); else 404 as a wrong secret.
        await own_session(request, end=True)
        try:
            result = await svc.broker.end_session(sid, EndReason.CLIENT_ENDED)
        except UnknownSession:
            raise unknown_session() from None
    if result.ended_now:
        log.info(
            "session ended", extra={"session_id": sid, "state": "ended", "reason": "client_ended"}
        )
    # The answer follows from the end result: no second read of the session.
    body = {
        "session_id": sid,
        "state": "ended",
        "end_reason": (result.reason or EndReason.CLIENT_ENDED).value,
    }
    return web.json_response(body)


@routes.get("/v1/sessions/{session_id}/events")
async def session_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the session view whenever it changes, until it ends.

    EventSource cannot send headers, so the secret may come as ?secret=.
    """
    svc = services(request)
    query_secret = request.query.get("secret")
    from_query = query_secret is not None and "Authorization" not in request.headers
    secret = query_secret if from_query and query_secret is not None else bearer(request)
    s = await own_session(request, secret=secret)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    deadline = (
        time.monotonic() + svc.settings.session_max_duration_s + svc.settings.broker.queue_timeout_s
    )
    with contextlib.suppress(ConnectionResetError):  # the client went away: nothing to do
        await _stream_changes(svc, request, response, s, secret, deadline)
    return response


async def _current(svc: Services, sid: str, secret: str) -> Session | None:
    """The session now; Redis lost it mid-stream: rebuilt from the secret, so the
    user sees themselves back in line without reconnecting."""
    try:
        return await svc.broker.get_session(sid)
    except UnknownSession:
        pass
    try:
        return await rebuilt(svc, sid, secret)
    except SessionExpired:
        return None


async def _stream_changes(
    svc: Services,
    request: web.Request,
    response: web.StreamResponse,
    s: Session,
    secret: str,
    deadline: float,
) -> None:
    out = _Writer(response)
    while time.monotonic() < deadline:
        if request.transport is None or request.transport.is_closing():
            return  # the client left; do not hold the handler until a write fails
        got = await _current(svc, s.session_id, secret)
        if got is None:
            return  # forgotten for good: the client's reconnect is answered 404 or 410
        s = got
        v = await queued_view(svc, s) if s.state is SessionState.QUEUED else view(svc, s)
        await out.send(v)
        if s.state is SessionState.ENDED:
            break
        if s.state is SessionState.QUEUED:
            # While it waits, its position comes from the process's queue feed (one
            # read per region per tick for every waiting client), not from reads of
            # its own; its session is read again once it left every queue.
            await _follow_queue(svc, request, out, s, secret, deadline)
        else:
            await asyncio.sleep(svc.settings.sse_poll_s)


class _Writer:
    """Writes a session view when it changed, a keepalive comment when quiet."""

    KEEPALIVE_S = 15.0

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response
        self.last = ""
        self.quiet_since = time.monotonic()

    async def send(self, v: SessionView) -> None:
        text = json.dumps(dump(v), separators=(",", ":"))
        if text != self.last:
            await self.response.write(f"event: session\ndata: {text}\n\n".encode())
            self.last, self.quiet_since = text, time.monotonic()
        else:
            await self.keepalive()

    async def keepalive(self) -> None:
        if time.monotonic() - self.quiet_since > self.KEEPALIVE_S:
            await self.response.write(b": keepalive\n\n")
            self.quiet_since = time.monotonic()


QUEUED_REREAD_S = 10.0


async def _follow_queue(
    svc: Services, request: web.Request, out: _Writer, s: Session, secret: str, deadline: float
) -> None:
    """Until the session left every queue it waits in. Its own record is read
    every `QUEUED_REREAD_S` (one call): widening adds regions to wait in."""
    reread_at = time.monotonic() + QUEUED_REREAD_S
    with svc.queue_feed.watch(s.session_id, tuple(s.queue_regions)) as w:
        while time.monotonic() < deadline:
            if request.transport is None or request.transport.is_closing():
                return
            got = await w.next(timeout_s=min(_Writer.KEEPALIVE_S, QUEUED_REREAD_S))
            if got is None:
                return  # in none of its queues any more: read the session again
            if time.monotonic() >= reread_at:
                now = await _current(svc, s.session_id, secret)
                if now is None or now.state is not SessionState.QUEUED:
                    return
                if now.queue_regions != s.queue_regions:
                    return
                reread_at = time.monotonic() + QUEUED_REREAD_S
            if got is False:
                await out.keepalive()
                continue
            assert not isinstance(got, bool)
            placement = Placement(s, position=got.position, estimated_wait_s=got.estimated_wait_s)
            await out.send(view(svc, s, placement))
