"""Agent API (instance agent -> control plane), authenticated per instance.

Register: the region's agent secret gates the call (so anonymous callers cannot
spend the control plane's EC2 API quota), the cloud-signed identity document
proves the instance (control_plane/api/attestation.py), and the answer carries
the instance's agent token. Heartbeats and events carry that token and may act
only for its instance; events only for the session it serves at the epoch it
serves. Every refusal comes before any write. docs/agent-identity.md.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from control_plane.api.context import services
from control_plane.api.problems import Problem
from control_plane.api.security import bearer, same_secret
from control_plane.api.sessions import read_json
from control_plane.domain import StaleEpoch
from control_plane.identity import nonce_digest
from streamfleet.lifecycle import EndReason, InstanceState
from streamfleet.wire import (
    AgentEvent,
    AgentEventReply,
    Assignment,
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
)

routes = web.RouteTableDef()
log = logging.getLogger("streamfleet.control_plane.agents")


def authorize_region(request: web.Request, region: str) -> None:
    svc = services(request)
    token = bearer(request)
    if region not in svc.settings.region_names:
        raise Problem(422, "unknown-region", "Unknown region", region, field="region")
    secret = svc.settings.agent_secrets.get(region)
    if secret is None or not same_secret(token, secret.get_secret_value()):
        raise Problem(403, "forbidden", "Not this region's agent secret", field="region")


def authorize_instance(request: web.Request, region: str, instance_id: str) -> None:
    """The bearer is the agent token of exactly this instance of this region."""
    svc = services(request)
    if region not in svc.settings.region_names:
        raise Problem(422, "unknown-region", "Unknown region", region, field="region")
    svc.attestor.check(bearer(request), instance_id, region, time.time())


@routes.post("/v1/agents/register")
async def register(request: web.Request) -> web.Response:
    svc = services(request)
    req = RegisterRequest.model_validate(await read_json(request))
    authorize_region(request, req.region)
    await svc.attestor.attest(req)
    state = await svc.broker.register_instance(
        req.region,
        req.instance_id,
        req.private_ip,
        instance_type=req.instance_type,
        version=req.version,
        nonce_digest=nonce_digest(req.nonce),
        max_epoch=req.max_epoch,
        served=(req.session.session_id, req.session.epoch, req.session.connected)
        if req.session
        else None,
    )
    token, expires = svc.attestor.issue(req.instance_id, req.region, time.time())
    log.info(
        "instance registered", extra={"region": req.region, "instance_id": req.instance_id,
                                      "state": state.value},
    )  # fmt: skip
    body = RegisterResponse(
        instance_id=req.instance_id,
        state=state,
        heartbeat_interval_s=svc.settings.broker.heartbeat_interval_s,
        claim_ttl_s=svc.settings.broker.claim_ttl_s,
        reconnect_window_s=svc.settings.broker.reconnect_window_s,
        idle_timeout_s=svc.settings.session_idle_timeout_s,
        max_duration_s=svc.settings.session_max_duration_s,
        agent_token=token,
        agent_token_expires_unix=expires,
    )
    return web.json_response(body.model_dump(mode="json"))


@routes.post("/v1/agents/heartbeat")
async def heartbeat(request: web.Request) -> web.Response:
    svc = services(request)
    req = HeartbeatRequest.model_validate(await read_json(request))
    authorize_instance(request, req.region, req.instance_id)
    ended = (req.ended.session_id, req.ended.epoch, req.ended.reason) if req.ended else None
    reply = await svc.broker.heartbeat(
        req.region, req.instance_id, req.state, req.session_id, req.epoch, req.max_epoch, ended
    )
    assignment = None
    if reply.session_id is not None:
        claim = reply.claim_deadline_ms / 1000 if reply.claim_deadline_ms else None
        assignment = Assignment(
            session_id=reply.session_id, epoch=reply.epoch, claim_expires_unix=claim
        )
    token, expires = svc.attestor.issue(req.instance_id, req.region, time.time())
    body = HeartbeatResponse(
        state=reply.state,
        assignment=assignment,
        commands=list(reply.commands),
        agent_token=token,
        agent_token_expires_unix=expires,
    )
    return web.json_response(body.model_dump(mode="json"))


@routes.post("/v1/agents/events")
async def event(request: web.Request) -> web.Response:
    svc = services(request)
    ev = AgentEvent.model_validate(await read_json(request))
    authorize_instance(request, ev.region, ev.instance_id)
    b = svc.broker
    if ev.type == "ready":
        await b.mark_ready(ev.region, ev.instance_id)
        return web.json_response(AgentEventReply(accepted=True).model_dump(mode="json"), status=202)
    if ev.session_id is None or ev.epoch is None:
        raise Problem(
            422,
            "validation",
            "session_id and epoch are required for this event",
            field="session_id",
        )
    served_by = (ev.region, ev.instance_id)
    try:
        if ev.type in ("client_connected", "client_reconnected", "client_disconnected"):
            connected = ev.type != "client_disconnected"
            state = await b.client_event(
                ev.region, ev.instance_id, ev.session_id, ev.epoch, connected=connected
            )
            _log_session(ev, state.value)
        elif ev.type == "session_ended":
            reason_text = str(ev.detail.get("reason", ""))
            if reason_text not in {r.value for r in EndReason}:
                raise Problem(
                    422, "validation", "detail.reason must be an end reason", field="detail.reason"
                )
            ended = await b.end_session(
                ev.session_id, EndReason(reason_text), epoch=ev.epoch, served_by=served_by
            )
            if ended.ended_now:
                _log_session(ev, "ended", reason_text)
        elif ev.type == "renderer_crashed" and await b.replace_session(
            ev.region, ev.instance_id, ev.session_id, ev.epoch
        ):
            # The renderer's state is gone with it: the session is re-placed with
            # its configuration (here again once the supervisor restarted the
            # renderer, if no other instance is ready first); its client follows
            # the new assignment on its event stream (docs/agent.md).
            _log_session(ev, "queued", "replaced")
    except StaleEpoch as exc:
        raise Problem(409, "stale-epoch", "Stale epoch", exc.detail, field="epoch") from None
    # One field, not the region's whole state hash (that cost grew with the fleet).
    now_in = await b.instance_state(ev.region, ev.instance_id)
    reply = AgentEventReply(accepted=True, state=now_in or InstanceState.LOST)
    return web.json_response(reply.model_dump(mode="json"), status=202)


def _log_session(ev: AgentEvent, state: str, reason: str | None = None) -> None:
    """One line per session state change an agent reported (correlation id: session_id)."""
    log.info(
        "agent reported %s", ev.type,
        extra={"session_id": ev.session_id, "state": state, "reason": reason,
               "region": ev.region, "instance_id": ev.instance_id, "epoch": ev.epoch},
    )  # fmt: skip
