"""The status page against a real `streamfleet up`: two EU regions with one
instance each, visitors from Frankfurt (who wait in both EU regions when both
instances are taken)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from tests.e2e.web.conftest import VIEWPORT, Stack, start_stack
from tests.e2e.web.visitors import leave, visit

EU, EUW = "eu-central-1", "eu-west-1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory, "up-status", "--regions", f"{EU},{EUW}", "--pool-size", "1",
        "--demo-visit-from",
    )  # fmt: skip


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
