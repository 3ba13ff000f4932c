"""Idle timeout with Epic's library: input through the library alone keeps a session,
silence ends it `idle`.

The agent cannot see the data channel: the renderer tells it that input arrived
(`streamfleetInput`, docs/pixel-streaming.md). The page sends nothing else
(no `inputActivity`), so an active session here is kept by that signal alone.
The stack's control plane gives agents a short idle timeout in its register answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext

from tests.e2e.web.conftest import (
    BARE_LIBRARY_JS,
    Configurator,
    Stack,
    create_session,
    session_view,
    start_stack,
)

REGION = "eu-central-1"
IDLE_S = 6.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory, "up-idle", "--regions", REGION, "--pool-size", "2",
        env={"STREAMFLEET_SESSION_IDLE_TIMEOUT_S": str(IDLE_S)},
    )  # fmt: skip


def test_a_user_giving_only_epic_input_is_not_ended(stack: Stack, context: BrowserContext) -> None:
    page = Configurator.open(context, stack)
    page.start()
    page.wait_streaming()
    page.wait_state("connected", timeout_ms=10_000)
    box = page.page.locator("#player video").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Drag and press keys through the library for well over twice the idle timeout.
    until = time.monotonic() + 2.5 * IDLE_S
    step = 0
    while time.monotonic() < until:
        page.page.mouse.move(cx, cy)
        page.page.mouse.down()
        page.page.mouse.move(cx + 20 * (1 if step % 2 else -1), cy, steps=3)
        page.page.mouse.up()
        page.page.keyboard.press("ArrowLeft" if step % 2 else "ArrowRight")
        step += 1
        page.page.wait_for_timeout(700)  # a user's pace, not a readiness wait
        assert page.state() == "connected", page.message()
    assert page.state() == "connected"
    page.leave()


def test_a_silent_user_is_ended_idle(stack: Stack, context: BrowserContext) -> None:
    view = create_session(stack, "e2e-idle-silent")
    page = context.new_page()
    page.goto(stack.configurator_url)  # only the library, which sends no input by itself
    page.evaluate(BARE_LIBRARY_JS, [view["stream"]["signaling_url"], view["stream"]["token"]])
    started = time.monotonic()
    page.wait_for_function(
        "window.__bare.disconnects.length > 0", timeout=int((IDLE_S + 20) * 1000)
    )
    assert time.monotonic() - started >= IDLE_S - 1.0
    [closed] = page.evaluate("window.__bare.disconnects")
    assert closed == {"eventString": "session ended: idle", "allowClickToReconnect": True}
    ended = session_view(stack, view["session_id"], view["session_secret"])
    assert (ended["state"], ended["end_reason"]) == ("ended", "idle")
