"""Bad input: a clear problem+json 4xx naming the field, never a 5xx; nothing changes."""

from __future__ import annotations

import pytest

from control_plane.api.openapi import OPERATIONS
from simulators.geoip_db import ip_of
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import ADMIN, ControlPlane, plane_settings, running_control_plane

FRA = ip_of("frankfurt")


def is_problem(status: int, body: object, headers: object) -> bool:
    return (
        400 <= status < 500
        and isinstance(body, dict)
        and {"type", "title", "status"} <= body.keys()
        and body["status"] == status
        and headers["Content-Type"].startswith("application/problem+json")  # type: ignore[index]
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": "roadster"}, "client_id"),
        ({"client_id": "", "model": "roadster"}, "client_id"),
        ({"client_id": "a b", "model": "roadster"}, "client_id"),
        ({"client_id": "x" * 129, "model": "roadster"}, "client_id"),
        ({"client_id": "a", "model": "../etc"}, "model"),
        ({"client_id": "a", "model": "m", "surprise": 1}, "surprise"),
        ({"client_id": "a", "model": "m", "configuration": []}, "configuration"),
        ({"client_id": "a", "model": "m", "configuration": {"k": "v" * 5000}}, "configuration"),
        (
            {"client_id": "a", "model": "m", "latencies_ms": {"eu-central-1": "fast"}},
            "latencies_ms.eu-central-1",
        ),
        (
            {"client_id": "a", "model": "m", "latencies_ms": {"mars-north-1": 5}},
            "latencies_ms.mars-north-1",
        ),
        ({"client_id": 5, "model": "m"}, "client_id"),
    ],
)
async def test_invalid_create_names_the_field(
    cp: ControlPlane, payload: dict[str, object], field: str
) -> None:
    status, body, headers = await cp.call("POST", "/v1/sessions", json=payload)
    assert is_problem(status, body, headers) and status == 422
    assert body["field"] == field
    _, pools, _ = await cp.call("GET", "/v1/pools", token=ADMIN)
    assert all(r["queue_depth"] == 0 and r["live_sessions"] == 0 for r in pools["regions"].values())


@pytest.mark.parametrize(
    ("kwargs", "status", "kind"),
    [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid-json"),
        ({"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 400, "invalid-json"),
        ({"data": b"client_id=a", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported-media-type"),
        ({"json": [1, 2]}, 422, "validation"),
        ({"data": b"{" + b" " * 20000 + b"}", "headers": {"Content-Type": "application/json"}}, 413, "body-too-large"),
    ],
)  # fmt: skip
async def test_malformed_bodies(
    cp: ControlPlane, kwargs: dict[str, object], status: int, kind: str
) -> None:
    got, body, headers = await cp.call("POST", "/v1/sessions", **kwargs)  # type: ignore[arg-type]
    assert got == status and is_problem(got, body, headers) and body["type"].endswith("/" + kind)


async def test_unknown_routes_and_methods_are_problems(cp: ControlPlane) -> None:
    status, body, headers = await cp.call("GET", "/v1/nothing-here")
    assert status == 404 and is_problem(status, body, headers)
    status, body, headers = await cp.call("PATCH", "/v1/sessions")
    assert status == 405 and is_problem(status, body, headers) and "Allow" in headers


async def test_rate_limit_is_shared_in_redis_and_says_when_to_retry(
    clean_redis: str, cloud: Cloud
) -> None:
    settings = plane_settings(
        clean_redis, cloud, rate_limit_per_minute=5, trusted_proxies=["127.0.0.1/32"]
    )
    async with (
        running_control_plane(settings, cloud) as one,
        running_control_plane(settings, cloud) as two,
    ):
        statuses = []
        for i in range(6):
            plane = one if i % 2 else two  # two replicas, one budget
            statuses.append((await plane.create(f"c{i}", ip=FRA))[0])
        assert statuses[:5] == [202] * 5
        status, body, headers = await one.call(
            "POST",
            "/v1/sessions",
            json={"client_id": "late", "model": "m"},
            headers={"X-Forwarded-For": FRA},
        )
        assert (
            status == 429 and is_problem(status, body, headers) and int(headers["Retry-After"]) >= 1
        )
        # Another client IP has its own budget.
        assert (await one.create("other", ip=ip_of("dublin")))[0] == 202


async def test_cors_only_for_configured_origins(cp: ControlPlane) -> None:
    _, _, headers = await cp.call("GET", "/healthz", headers={"Origin": "https://shop.example"})
    assert headers["Access-Control-Allow-Origin"] == "https://shop.example"
    _, _, headers = await cp.call("GET", "/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers
    status, _, headers = await cp.call(
        "OPTIONS", "/v1/sessions",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )  # fmt: skip
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]
    status, _, headers = await cp.call(
        "POST", "/v1/sessions", json={}, headers={"Origin": "https://shop.example"}
    )
    assert status == 422 and headers["Access-Control-Allow-Origin"] == "https://shop.example"


async def test_openapi_is_true_to_the_routes(cp: ControlPlane) -> None:
    status, doc, _ = await cp.call("GET", "/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in cp.app.router.routes()
        if route.method not in ("HEAD", "OPTIONS") and route.resource is not None
        and not route.resource.canonical.startswith("/web")
    }  # fmt: skip
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    assert {(op[0], op[1]) for op in OPERATIONS} == documented


async def test_metrics_expose_assignment_and_ends(cp: ControlPlane) -> None:
    await cp.ready_instance("eu-central-1")
    _, s = await cp.create("alice", ip=FRA)
    await cp.call("DELETE", f"/v1/sessions/{s['session_id']}", token=s["session_secret"])
    status, text, _ = await cp.call("GET", "/metrics")
    assert status == 200
    assert 'streamfleet_assignment_outcomes_total{outcome="assigned"} 1.0' in text
    assert 'streamfleet_sessions_ended_total{reason="client_ended"} 1.0' in text
    assert "streamfleet_assignment_seconds_bucket" in text
