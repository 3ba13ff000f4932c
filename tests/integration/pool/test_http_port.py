"""The HTTP control-plane adapter against a tiny aiohttp server serving the contract's shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from regional_stack.pool.http_port import ControlPlaneError, HttpControlPlane
from regional_stack.pool.ports import ContractError
from streamfleet.localproc import free_port
from streamfleet.wire import InstancesView, PoolsView

TOKEN = "admin-test-token"
SID = "0123456789abcdef0123456789abcdef-0123456789abcdef"
# Built through the wire models, so the fixture server cannot drift from the contract.
POOLS = PoolsView.model_validate(
    {
        "regions": {
            "eu-central-1": {
                "instances": {
                    "provisioning": 0,
                    "booting": 1,
                    "ready": 3,
                    "reserved": 1,
                    "streaming": 2,
                    "recycling": 0,
                    "draining": 0,
                    "terminated": 0,
                    "lost": 0,
                },
                "queue_depth": 4,
                "queued_here": 4,
                "live_sessions": 3,
                "constrained": False,
                "arrivals_per_min": [0, 2, 5, 4],
            }
        },
        "queued_sessions": 4,
    }
).model_dump(mode="json")
INSTANCES = InstancesView.model_validate(
    {
        "instances": [
            {
                "instance_id": "i-0abc",
                "state": "streaming",
                "session_id": SID,
                "private_ip": "127.11.0.5",
                "instance_type": "g4dn.2xlarge",
                "state_age_s": 12.5,
                "heartbeat_age_s": 1.0,
                "draining": False,
            },
            {
                "instance_id": "i-0def",
                "state": "ready",
                "session_id": None,
                "private_ip": "127.11.0.6",
                "instance_type": "g4dn.2xlarge",
                "state_age_s": 300,
                "heartbeat_age_s": 2,
                "draining": False,
            },
        ]
    }
).model_dump(mode="json")


@dataclass
class Seen:
    requests: list[tuple[str, str, Any]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"type": "unauthorized"}, status=401)
        body = await request.json() if request.can_read_body else None
        seen.requests.append((request.method, request.path, body))
        return await handler(request)

    async def pools(_: web.Request) -> web.Response:
        return web.json_response(POOLS)

    async def instances(request: web.Request) -> web.Response:
        if request.match_info["region"] == "broken":
            return web.json_response({"instances": [{"state": "ready"}]})
        return web.json_response(INSTANCES)

    async def empty(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def accepted(_: web.Request) -> web.Response:
        return web.Response(status=202)

    app = web.Application(middlewares=[auth])
    app.router.add_get("/v1/pools", pools)
    app.router.add_get("/v1/pools/{region}/instances", instances)
    app.router.add_put("/v1/pools/{region}/constraint", empty)
    app.router.add_post("/v1/pools/{region}/instances/{iid}/drain", accepted)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_adapter_parses_and_sends_the_contract(server: tuple[str, Seen]) -> None:
    url, seen = server
    cp = HttpControlPlane(url, TOKEN)
    state = await asyncio.to_thread(cp.pool_state, "eu-central-1")
    assert state.count("reserved", "streaming", "recycling") == 3
    assert (state.queue_depth, state.constrained, state.arrivals_per_min) == (
        4,
        False,
        (0, 2, 5, 4),
    )
    records = await asyncio.to_thread(cp.instances, "eu-central-1")
    assert [(r.instance_id, r.state, r.session_id, r.protected) for r in records] == [
        ("i-0abc", "streaming", SID, True),
        ("i-0def", "ready", None, False),
    ]
    assert records[1].state_age_s == 300.0
    await asyncio.to_thread(
        cp.report_constraint, "eu-central-1", True, "InsufficientInstanceCapacity"
    )
    await asyncio.to_thread(cp.drain, "eu-central-1", "i-0def")
    assert seen.requests[-2:] == [
        (
            "PUT",
            "/v1/pools/eu-central-1/constraint",
            {"constrained": True, "reason": "InsufficientInstanceCapacity"},
        ),
        ("POST", "/v1/pools/eu-central-1/instances/i-0def/drain", None),
    ]
    assert json.dumps(seen.requests)  # every body was JSON


async def test_adapter_errors_are_named(server: tuple[str, Seen]) -> None:
    url, _ = server
    with pytest.raises(ControlPlaneError, match="401"):
        await asyncio.to_thread(HttpControlPlane(url, "wrong").pool_state, "eu-central-1")
    with pytest.raises(ContractError, match="us-west-2"):
        await asyncio.to_thread(HttpControlPlane(url, TOKEN).pool_state, "us-west-2")
    with pytest.raises(ContractError):
        await asyncio.to_thread(HttpControlPlane(url, TOKEN).instances, "broken")
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ControlPlaneError):
        await asyncio.to_thread(HttpControlPlane(closed, TOKEN, timeout_s=1).pool_state, "x")


def test_a_control_plane_that_accepts_but_never_answers_is_a_control_plane_error() -> None:
    """A read timeout after connecting (an overloaded control plane) is not a URLError;
    the pool manager's loop must still see ControlPlaneError and try again, not crash."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel accepts the connection; nobody ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(ControlPlaneError, match="TimeoutError"):
            HttpControlPlane(url, TOKEN, timeout_s=0.3).pool_state("eu-central-1")


async def test_a_cloud_api_answering_html_500_fails_the_pass_not_the_loop(
    server: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's threaded server sometimes answers a bare HTML 500 (botocore: a
    ResponseParserError, not a ClientError). The pool manager's pass fails, is
    counted, and the next pass runs: the process must not crash."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from regional_stack.pool.cli import build, reconcile_pass
    from regional_stack.pool.metrics import PoolMetrics
    from regional_stack.pool.settings import PoolSettings
    from simulators.local_aws import fake_aws_environment

    calls = []

    class Html500(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<!doctype html><title>500 Internal Server Error</title>"
            self.send_response(500)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    cloud = ThreadingHTTPServer(("127.0.0.1", 0), Html500)
    threading.Thread(target=cloud.serve_forever, daemon=True).start()
    try:
        for key, value in fake_aws_environment().items():
            monkeypatch.setenv(key, value)
        url, _ = server
        settings = PoolSettings(
            control_plane_url=url, admin_token=TOKEN, region="eu-central-1",
            aws_endpoint_url=f"http://127.0.0.1:{cloud.server_address[1]}", retry_attempts=1,
        )  # fmt: skip
        manager, metrics = build(settings), PoolMetrics("eu-central-1")
        assert not await asyncio.to_thread(reconcile_pass, manager, metrics)
        assert not await asyncio.to_thread(reconcile_pass, manager, metrics)
        assert len(calls) >= 2  # the cloud was asked on each pass
        failed = metrics.registry.get_sample_value(
            "streamfleet_pool_passes_total",
            {"region": "eu-central-1", "outcome": "cloud_unavailable"},
        )
        assert failed == 2
    finally:
        cloud.shutdown()
        cloud.server_close()
