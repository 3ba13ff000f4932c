"""One instance in the only region: the second visitor queues and is served next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.web.conftest import VIEWPORT, Configurator, Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory, "up-one", "--regions", "eu-central-1", "--pool-size", "1"
    )


def test_second_browser_queues_then_gets_the_stream(
    stack: Stack, browser: Browser, artifacts: Path
) -> None:
    # Two contexts are two browsers: separate storage, so separate client ids.
    first_ctx = browser.new_context(viewport=VIEWPORT)
    second_ctx = browser.new_context(viewport=VIEWPORT)
    try:
        first = Configurator.open(first_ctx, stack)
        first.start()
        first.wait_streaming()

        second = Configurator.open(second_ctx, stack)
        second.start()
        second.wait_state("queued", timeout_ms=10_000)
        second.page.wait_for_function(
            "document.getElementById('overlay').dataset.position === '1'", timeout=10_000
        )
        assert "number 1 in the queue" in second.page.inner_text("#overlay-title")
        assert "Expected wait" in second.page.inner_text("#overlay-detail")
        second.page.screenshot(path=str(artifacts / "configurator-queued.png"))

        first.leave()
        # The server-sent events tell the queued page its instance; it connects by itself.
        second.wait_streaming()
        assert second.region() == "eu-central-1"
        assert first.errors == [] and second.errors == []
        second.leave()
    finally:
        first_ctx.close()
        second_ctx.close()
