"""Visitors through the session API, as the configurator page calls it, without
a browser: create, read and end sessions with their secrets. They visit from
Frankfurt (the stacks run with --demo-visit-from)."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from tests.e2e.web.conftest import CITY_IPS, Stack


@dataclass
class Visitor:
    client_id: str
    session_id: str
    secret: str
    state: str
    assigned_at: float | None = None


def call(stack: Stack, method: str, path: str, *, secret: str | None = None,
         body: dict[str, Any] | None = None) -> Any:  # fmt: skip
    headers = {"X-Demo-Client-IP": CITY_IPS["frankfurt"], "Content-Type": "application/json"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    request = urllib.request.Request(
        stack.info["control_plane_url"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def visit(stack: Stack, client_id: str) -> Visitor:
    got = call(stack, "POST", "/v1/sessions", body={"client_id": client_id, "model": "roadster"})
    v = Visitor(client_id, got["session_id"], got["session_secret"], got["state"])
    if v.state == "assigned":
        v.assigned_at = time.monotonic()
    return v


def view(stack: Stack, v: Visitor) -> Any:
    return call(stack, "GET", f"/v1/sessions/{v.session_id}", secret=v.secret)


def leave(stack: Stack, v: Visitor) -> None:
    call(stack, "DELETE", f"/v1/sessions/{v.session_id}", secret=v.secret)
    v.state = "ended"
