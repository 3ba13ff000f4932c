"""The status page and the queue estimate against a real `streamfleet up`:
two EU regions with one instance each, visitors from Frankfurt (who wait in
both EU regions when both instances are taken)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from tests.e2e.web.conftest import CITY_IPS, VIEWPORT, Stack, start_stack

EU, EUW = "eu-central-1", "eu-west-1"
# Each served session is held this long, then deleted: the known hold time.
HOLD_S = 4.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory, "up-status", "--regions", f"{EU},{EUW}", "--pool-size", "1",
        "--demo-visit-from",
    )  # fmt: skip


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


def wait_all_ready(stack: Stack) -> None:
    deadline = time.monotonic() + 60
    while not all(i["state"] == "ready" for r in (EU, EUW) for i in stack.instances(r)):
        assert time.monotonic() < deadline, "instances not ready again in 60 s"
        time.sleep(0.2)


def test_status_page_counts_each_queued_session_once_and_fits_1280(
    stack: Stack, context: BrowserContext, artifacts: Path
) -> None:
    holders = [visit(stack, "holder-a"), visit(stack, "holder-b")]
    assert {v.state for v in holders} == {"assigned"}
    waiting = [visit(stack, f"waiter-{n}") for n in range(3)]
    assert {v.state for v in waiting} == {"queued"}
    try:
        pools = stack.ops("/v1/pools")
        # Each waits in both EU regions: the queues say 3 and 3, the people are 3.
        assert pools["regions"][EU]["queue_depth"] == pools["regions"][EUW]["queue_depth"] == 3
        assert pools["queued_sessions"] == 3

        assert context.pages == [] and VIEWPORT["width"] == 1280
        page = context.new_page()
        page.goto(stack.status_url)
        page.wait_for_selector("section.region[data-region] tbody tr", timeout=10_000)
        page.wait_for_function("document.getElementById('queued-total').textContent === '3'")
        here = page.eval_on_selector_all(
            "[data-field='queued_here']", "els => els.map(e => Number(e.textContent))"
        )
        assert sorted(here) == [0, 3]
        page.screenshot(path=str(artifacts / "status-1280.png"), full_page=True)

        # Nothing wider than the window, and every Drain button inside it, unclipped:
        # the element at the button's centre is the button itself.
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        buttons = page.query_selector_all("button.drain")
        assert len(buttons) == 2
        for button in buttons:
            button.scroll_into_view_if_needed()
            box = button.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], box
            hit = page.evaluate(
                "([x, y]) => document.elementFromPoint(x, y)?.closest('button.drain') !== null",
                [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
            )
            assert hit, f"Drain button covered or clipped at {box}"
    finally:
        for v in holders + waiting:
            leave(stack, v)


def test_queue_estimate_is_within_half_of_the_real_wait(stack: Stack, artifacts: Path) -> None:
    """Two instances, every session held HOLD_S: estimates read once the service
    rate has been observed are within 50% of the wait that followed."""
    wait_all_ready(stack)
    first, second = visit(stack, "est-a"), visit(stack, "est-b")
    assert first.state == second.state == "assigned"
    # Staggered so the two instances free up evenly, not in pairs.
    first.assigned_at = time.monotonic() - HOLD_S / 2
    queued = [visit(stack, f"est-q{n}") for n in range(8)]
    assert {v.state for v in queued} == {"queued"}
    serving = [first, second]
    served = 0
    samples: list[tuple[Visitor, int, int, float]] = []  # visitor, position, estimate, read at
    sampled: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        while any(v.assigned_at is None for v in queued):
            assert time.monotonic() < deadline, "queue did not drain in 120 s"
            now = time.monotonic()
            for v in [s for s in serving if s.assigned_at and now - s.assigned_at >= HOLD_S]:
                leave(stack, v)
                serving.remove(v)
            for v in (q for q in queued if q.assigned_at is None):
                got = view(stack, v)
                if got["state"] != "queued":
                    v.state, v.assigned_at = got["state"], time.monotonic()
                    serving.append(v)
                    served += 1
                elif served >= 3 and v.session_id not in sampled:
                    # The rate is observed (3 serves): one reading per waiting session.
                    sampled.add(v.session_id)
                    samples.append((v, got["position"], got["estimated_wait_s"], time.monotonic()))
            time.sleep(0.1)
    finally:
        for v in [*serving, *queued]:
            if v.state != "ended":
                leave(stack, v)
    errors = []
    for v, position, estimate, read_at in samples:
        assert v.assigned_at is not None
        actual = v.assigned_at - read_at
        errors.append((position, estimate, round(actual, 1), abs(estimate - actual) / actual))
    (artifacts / "queue-estimate.json").write_text(json.dumps(errors, indent=1))
    assert len(errors) >= 3, errors
    # Position 1's wait is a fraction of one hold time, too short to judge by.
    judged = [e for e in errors if e[0] >= 2]
    assert judged and all(e[3] <= 0.5 for e in judged), errors
