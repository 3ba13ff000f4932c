"""The OpenAPI 3.1 document, generated from the wire models and one route table."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from streamfleet import ids
from streamfleet.wire import (
    AgentEvent,
    AgentEventReply,
    ConstraintRequest,
    CreateSessionRequest,
    DrainRequest,
    DrainView,
    EndSessionView,
    Health,
    HeartbeatRequest,
    HeartbeatResponse,
    InstancesView,
    PoolsView,
    ProblemDetail,
    RegisterRequest,
    RegisterResponse,
    SessionView,
)

# (method, path, summary, auth, request model, {status: response model or None})
Operation = tuple[
    str, str, str, str | None, type[BaseModel] | None, dict[int, type[BaseModel] | None]
]
OPERATIONS: list[Operation] = [
    ("post", "/v1/sessions", "Give this user a 3D stream (201 assigned, 202 queued)", None, CreateSessionRequest,
     {200: SessionView, 201: SessionView, 202: SessionView, 415: None, 422: None, 429: None}),
    ("get", "/v1/sessions/{session_id}", "Read your session", "session", None, {200: SessionView, 401: None, 404: None, 410: None}),
    ("delete", "/v1/sessions/{session_id}", "End your session", "session", None, {200: SessionView, 401: None, 404: None, 410: None}),
    ("get", "/v1/sessions/{session_id}/events", "Follow your session (server-sent events)", "session", None,
     {200: None, 401: None, 404: None, 410: None}),
    ("post", "/v1/agents/register", "An instance agent announces itself", "agent", RegisterRequest,
     {200: RegisterResponse, 401: None, 403: None, 422: None}),
    ("post", "/v1/agents/heartbeat", "Agent heartbeat; answers assignment and commands", "agent", HeartbeatRequest,
     {200: HeartbeatResponse, 401: None, 403: None, 404: None, 422: None}),
    ("post", "/v1/agents/events", "Agent reports what happened", "agent", AgentEvent, {202: AgentEventReply, 401: None, 403: None, 409: None, 422: None}),
    ("get", "/v1/pools", "Pools, queues and demand per region", "admin", None, {200: PoolsView, 401: None, 403: None}),
    ("get", "/v1/pools/{region}/instances", "A region's instances", "admin", None,
     {200: InstancesView, 401: None, 403: None, 404: None}),
    ("put", "/v1/pools/{region}/constraint", "Mark a region constrained (it cannot grow)", "admin", ConstraintRequest,
     {204: None, 401: None, 403: None, 404: None, 422: None}),
    ("post", "/v1/pools/{region}/instances/{instance_id}/drain", "Drain an instance", "admin", DrainRequest,
     {202: DrainView, 401: None, 403: None, 404: None}),
    ("post", "/v1/admin/sessions/{session_id}/end", "End any session", "admin", None,
     {202: EndSessionView, 401: None, 403: None, 404: None}),
    ("get", "/v1/openapi.json", "This document", None, None, {200: None}),
    ("get", "/healthz", "Liveness and Redis reachability", None, None, {200: Health, 503: None}),
    ("get", "/metrics", "Prometheus metrics", None, None, {200: None}),
]  # fmt: skip

# Path parameters carry the same identifier rules as the bodies.
_PATTERNS = {
    "session_id": ids.SESSION_ID.json_pattern,
    "region": ids.REGION.json_pattern,
    "instance_id": ids.INSTANCE_ID.json_pattern,
}


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    problem = _ref(ProblemDetail, schemas)
    paths: dict[str, Any] = {}
    for method, path, summary, auth, req, responses in OPERATIONS:
        op: dict[str, Any] = {"summary": summary, "responses": {}}
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": _PATTERNS[p]},
                }
                for p in params
            ]
        if auth:
            op["security"] = [{auth: []}]
        if req is not None:
            op["requestBody"] = {
                "required": method != "post" or req is not DrainRequest,
                "content": {"application/json": {"schema": _ref(req, schemas)}},
            }
        for status, model in responses.items():
            if status >= 400:
                content = {"application/problem+json": {"schema": problem}}
                op["responses"][str(status)] = {"description": "problem", "content": content}
            elif model is not None:
                op["responses"][str(status)] = {
                    "description": "ok",
                    "content": {"application/json": {"schema": _ref(model, schemas)}},
                }
            else:
                op["responses"][str(status)] = {"description": "ok"}
        paths.setdefault(path, {})[method] = op
    bearer = {"type": "http", "scheme": "bearer"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "streamfleet control plane", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"session": bearer, "agent": bearer, "admin": bearer},
        },
    }
