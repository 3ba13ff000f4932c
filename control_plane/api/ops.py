"""Ops API (admin bearer): pools, instances, constraints, drains, ending sessions.

Every answer is a model of streamfleet.wire, so the OpenAPI document, this
module and every client (pool manager, `streamfleet status`, benchmarks) share
one shape. Where the broker still hands back plain values, they are validated
into the model here: a broker that drifts fails loudly, never on the wire.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from control_plane.api.context import services
from control_plane.api.problems import Problem
from control_plane.api.security import require_admin
from control_plane.api.sessions import read_json
from control_plane.domain import UnknownSession
from control_plane.queue_counts import count_once
from streamfleet.lifecycle import EndReason
from streamfleet.wire import (
    ConstraintRequest,
    DrainRequest,
    DrainView,
    EndSessionView,
    InstancesView,
    PoolsView,
    RegionPool,
)

routes = web.RouteTableDef()
# A bounded read per region: the distinct count is exact up to this many queued.
QUEUE_COUNT_LIMIT = 10_000


def answer(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


def known_region(request: web.Request) -> str:
    region = request.match_info["region"]
    if region not in services(request).settings.region_names:
        raise Problem(404, "unknown-region", "Unknown region", region, field="region")
    return region


@routes.get("/v1/pools")
async def pools(request: web.Request) -> web.Response:
    require_admin(request)
    b = services(request).broker
    queues = {region: await b.reads.queue_head(region, QUEUE_COUNT_LIMIT) for region in b.regions}
    queued = count_once(queues)
    regions: dict[str, RegionPool] = {}
    for region in b.regions:
        snap = await b.snapshot(region)
        regions[region] = RegionPool(
            instances=snap.instances,
            queue_depth=snap.queue_depth,
            queued_here=queued.by_region[region],
            live_sessions=snap.live_sessions,
            constrained=snap.constrained,
            constraint_reason=snap.constraint_reason,
            arrivals_per_min=await b.arrivals_per_min(region),
        )
    return answer(PoolsView(regions=regions, queued_sessions=queued.total))


@routes.get("/v1/pools/{region}/instances")
async def instances(request: web.Request) -> web.Response:
    require_admin(request)
    region = known_region(request)
    rows = await services(request).broker.instance_details(region)
    return answer(InstancesView(instances=rows))


@routes.put("/v1/pools/{region}/constraint")
async def constraint(request: web.Request) -> web.Response:
    require_admin(request)
    region = known_region(request)
    req = ConstraintRequest.model_validate(await read_json(request))
    await services(request).broker.set_constrained(region, req.constrained, req.reason)
    return web.Response(status=204)


@routes.post("/v1/pools/{region}/instances/{instance_id}/drain")
async def drain(request: web.Request) -> web.Response:
    require_admin(request)
    region = known_region(request)
    req = (
        DrainRequest.model_validate(await read_json(request))
        if request.can_read_body
        else DrainRequest()
    )
    state = await services(request).broker.drain(
        region, request.match_info["instance_id"], force=req.force
    )
    return answer(DrainView(instance_id=request.match_info["instance_id"], state=state), 202)


@routes.post("/v1/admin/sessions/{session_id}/end")
async def end_session(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        result = await services(request).broker.end_session(
            request.match_info["session_id"], EndReason.DRAINED
        )
    except UnknownSession:
        raise Problem(404, "unknown-session", "Unknown session", field="session_id") from None
    return answer(EndSessionView(ended_now=result.ended_now, state=result.state), 202)
