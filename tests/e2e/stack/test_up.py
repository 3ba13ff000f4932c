"""`streamfleet up` brings the stack up, serves streams, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from simulators.local_stack.testing import alive, descendants, running_stack


def http(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_up_serves_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    with running_stack(
        "--regions", "eu-central-1,us-east-1", "--pool-size", "1", workdir=tmp_path
    ) as info:
        assert set(info["regions"]) == {"eu-central-1", "us-east-1"}
        children = descendants(info["pid"])
        # redis, moto, control plane, per region coturn + nginx (master and worker)
        # + pool manager, and per instance an agent and its renderer.
        assert len(children) >= 3 + 2 * 4 + 2 * 2, children
        status, pools = http(
            "GET", info["control_plane_url"] + "/v1/pools", token=info["admin_token"]
        )
        assert status == 200 and all(
            r["instances"]["ready"] >= 1 for r in pools["regions"].values()
        )
        status, s = http(
            "POST",
            info["control_plane_url"] + "/v1/sessions",
            {"client_id": "e2e-1", "model": "roadster"},
        )
        assert status == 201 and s["stream"]["url"].startswith(info["regions"][s["region"]])
        # Through the router to the agent on the instance's private IP, with the token.
        status, health = http("GET", s["stream"]["url"] + "healthz?token=" + s["stream"]["token"])
        assert status == 200, health
        assert http("GET", s["stream"]["url"] + "healthz")[0] == 403
        status, pools = http(
            "GET", info["control_plane_url"] + "/v1/pools", token=info["admin_token"]
        )
        assert pools["regions"][s["region"]]["instances"]["reserved"] == 1
        pid = info["pid"]
    # The context manager sent SIGINT (Ctrl-C) and waited: nothing may survive.
    deadline = time.monotonic() + 10
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
    assert [p for p in children if alive(p)] == []
    assert "stopped" in (tmp_path / "up.log").read_text()
