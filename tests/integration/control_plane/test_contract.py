"""One contract: every JSON body the real clients send or parse, against a real
control plane, validates against streamfleet.wire; the OpenAPI document is
generated from the same models.

The clients are the real ones: the pool manager's HTTP port, `streamfleet
status`, the agent's control-plane client, and the session API as the browser
uses it (create, read, follow with server-sent events, delete). Every exchange
is recorded by tests/fixtures/contract.py and checked in strict mode (every
route and status documented), and every operation with a body is exercised.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from pydantic import BaseModel

from control_plane.api.openapi import OPERATIONS, build_openapi
from regional_stack.agent.control_plane_client import ControlPlaneClient
from regional_stack.pool.http_port import HttpControlPlane
from simulators import status_cli
from simulators.geoip_db import ip_of
from streamfleet import wire
from tests.fixtures.contract import Exchange, violations
from tests.fixtures.control_plane import ADMIN, ControlPlane, agent_secret

EU = "eu-central-1"
FRA = ip_of("frankfurt")


async def follow_events(cp: ControlPlane, view: dict[str, Any]) -> list[wire.SessionView]:
    """Read the session's server-sent events until it ends; each is a SessionView."""
    url = f"{cp.url}/v1/sessions/{view['session_id']}/events"
    seen: list[wire.SessionView] = []
    async with cp.http.get(url, params={"secret": view["session_secret"]}) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.startswith(b"data: "):
                seen.append(wire.SessionView.model_validate_json(line[6:]))
                if seen[-1].state == "ended":
                    return seen
    return seen


async def test_every_body_the_real_clients_exchange_keeps_the_contract(cp: ControlPlane) -> None:
    agent = ControlPlaneClient(cp.http, cp.url, agent_secret(EU))
    pool = HttpControlPlane(cp.url, ADMIN)

    # The agent registers and reports ready; a browser gets its instance.
    iid, ip = cp.launch(EU)
    ready = wire.HeartbeatRequest(instance_id=iid, region=EU, state="ready")
    await agent.register(
        wire.RegisterRequest.model_validate(
            cp.register_body(EU, iid, ip, instance_type="g4dn.xlarge", version="t")
        )
    )
    await agent.heartbeat(ready)
    status, view = await cp.create("browser-contract", ip=FRA)
    assert status == 201, view
    events = asyncio.create_task(follow_events(cp, view))
    answer = await agent.heartbeat(ready)
    assert answer.assignment is not None
    epoch = answer.assignment.epoch
    sid = view["session_id"]
    serving = {"instance_id": iid, "region": EU, "session_id": sid, "epoch": epoch}
    await agent.event(wire.AgentEvent(type="client_connected", **serving))
    await agent.heartbeat(wire.HeartbeatRequest(state="streaming", **serving))
    assert (await cp.call("GET", f"/v1/sessions/{sid}", token=view["session_secret"]))[0] == 200

    # The ops clients read it all.
    state = await asyncio.to_thread(pool.pool_state, EU)
    assert state.count("streaming") == 1
    records = await asyncio.to_thread(pool.instances, EU)
    assert [(r.instance_id, r.session_id, r.private_ip) for r in records] == [(iid, sid, ip)]
    regions = await asyncio.to_thread(status_cli.collect, cp.url, ADMIN)
    assert sid in status_cli.render(regions)
    await asyncio.to_thread(pool.report_constraint, EU, True, "InsufficientInstanceCapacity")
    await asyncio.to_thread(pool.report_constraint, EU, False, "")

    # The browser leaves; a second one is ended by ops; the instance is drained.
    assert (await cp.call("DELETE", f"/v1/sessions/{sid}", token=view["session_secret"]))[0] == 200
    followed = await asyncio.wait_for(events, 10)
    assert [v.state for v in followed][-1] == "ended"
    await agent.event(wire.AgentEvent(instance_id=iid, region=EU, type="ready"))
    await agent.heartbeat(ready)
    status, other = await cp.create("browser-contract-2", ip=FRA)
    assert status in (201, 202), other
    end = await cp.call("POST", f"/v1/admin/sessions/{other['session_id']}/end", token=ADMIN)
    assert end[0] == 202
    await asyncio.to_thread(pool.drain, EU, iid)
    assert (await cp.call("GET", "/healthz"))[0] == 200

    # And the refusals a client must be able to parse.
    assert (await cp.call("GET", "/v1/pools", token="wrong"))[0] == 403
    assert (await cp.call("GET", "/v1/pools/xx-nowhere-1/instances", token=ADMIN))[0] == 404
    assert (await cp.call("POST", "/v1/sessions", json={"client_id": "a b"}))[0] == 422

    assert not violations(cp.exchanges, documented_only=True)
    assert_every_body_was_exercised(cp.exchanges)


def assert_every_body_was_exercised(exchanges: list[Exchange]) -> None:
    """Each operation that has a request or answer model was seen succeeding."""
    succeeded = {(e.method, e.route) for e in exchanges if e.status < 400}
    untested = [
        f"{method.upper()} {path}"
        for method, path, _, _, req, answers in OPERATIONS
        if (req is not None or any(m is not None for s, m in answers.items() if s < 400))
        and (method.upper(), path) not in succeeded
    ]
    assert not untested, f"no client exercised {untested}"


def test_a_broken_answer_is_caught() -> None:
    # The checker itself: a wrong shape, an undocumented status, a non-problem error.
    def ex(status: int, answer: bytes, ctype: str = "application/json") -> Exchange:
        return Exchange("GET", "/v1/pools", "/v1/pools", status, ctype, b"", answer)

    good = wire.PoolsView(regions={}, queued_sessions=0).model_dump_json().encode()
    assert violations([ex(200, good)], documented_only=True) == []
    assert violations([ex(200, b'{"regions": {"eu-central-1": {}}, "queued_sessions": 0}')])
    assert violations([ex(200, b'{"regions": {}, "queued_sessions": 0, "extra": 1}')])
    assert violations([ex(418, good)])
    assert violations([ex(201, good)], documented_only=True)
    problem = b'{"type": "t", "title": "x", "status": 403}'
    assert violations([ex(403, problem, "application/problem+json")]) == []
    assert violations([ex(403, problem, "application/json")])


def _component(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return schema, schema.pop("$defs", {})


def test_the_openapi_schemas_are_exactly_the_models_schemas() -> None:
    doc = build_openapi()
    components = doc["components"]["schemas"]
    models: set[type[BaseModel]] = {wire.ProblemDetail}
    for _, _, _, _, req, answers in OPERATIONS:
        models |= {m for m in (req, *answers.values()) if m is not None}
    expected: dict[str, Any] = {}
    for model in models:
        schema, defs = _component(model)
        expected[model.__name__] = schema
        expected.update(defs)
    assert components == expected  # nothing hand-written, nothing missing


def test_every_wire_model_of_a_json_body_is_in_the_openapi_document() -> None:
    names = set(build_openapi()["components"]["schemas"])
    # Sub-models appear through their parents; Strict and StrictRequest are base classes.
    in_document = {
        name
        for name, obj in vars(wire).items()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == wire.__name__
    } - {"Strict", "StrictRequest"}
    assert in_document <= names, in_document - names


async def test_the_served_document_is_the_generated_one(cp: ControlPlane) -> None:
    status, served, _ = await cp.call("GET", "/v1/openapi.json")
    assert status == 200 and served == build_openapi()


async def test_answers_parse_with_the_models_a_client_would_use(cp: ControlPlane) -> None:
    # Same traffic seen from a plain HTTP client: the models parse what arrives.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        async with http.get(f"{cp.url}/v1/pools") as resp:
            pools = wire.PoolsView.model_validate_json(await resp.read())
        assert set(pools.regions) == set(cp.settings.region_names)
        async with http.get(f"{cp.url}/v1/pools/{EU}/instances") as resp:
            assert wire.InstancesView.model_validate_json(await resp.read()).instances == []
