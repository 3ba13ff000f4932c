"""Epic's unmodified Pixel Streaming frontend library against a real `streamfleet up`.

The configurator page streams through `@epicgames-ps/lib-pixelstreamingfrontend-ue5.5`
exactly as bundled from package-lock.json (no shim); these tests drive the
library's own API (`window.streamfleet.pixelStreaming` is its `PixelStreaming`
object) and its own mouse and keyboard input, and watch the renderer stub's
decoded pixels, the router's access log and the agent's log.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext

from regional_stack.renderer.scene import SceneState, body_probe
from tests.e2e.web.conftest import (
    BARE_LIBRARY_JS,
    STREAM_TIMEOUT_MS,
    VIEWPORT,
    Configurator,
    Stack,
    create_session,
    hex_rgb,
    start_stack,
)

REGION = "eu-central-1"
GREEN, YELLOW = "#1f9d55", "#f2c200"

# Mean absolute difference of the decoded picture against a reference, in grey
# levels, over a grid of samples below the frame marker: how much the view moved.
_FRAME_DIFF_JS = """(ref) => {
    const v = document.querySelector('#player video');
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const out = [];
    for (let y = 40; y < c.height; y += 6)
        for (let x = 0; x < c.width; x += 6) {
            const i = 4 * (y * c.width + x);
            out.push(Math.round((d[i] + d[i + 1] + d[i + 2]) / 3));
        }
    if (!ref) return out;
    let sum = 0;
    for (let i = 0; i < out.length; i++) sum += Math.abs(out[i] - ref[i]);
    return sum / out.length;
}"""

# Record the library's disconnect events from now on.
_WATCH_DISCONNECTS_JS = """() => {
    window.__disconnects = [];
    window.streamfleet.pixelStreaming.addEventListener('webRtcDisconnected',
        (e) => window.__disconnects.push(e.data));
}"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, "up-epic", "--regions", REGION, "--pool-size", "2")


@pytest.fixture
def streaming(stack: Stack, context: BrowserContext) -> Iterator[Configurator]:
    page = Configurator.open(context, stack)
    page.start()
    page.wait_streaming()
    # The session's starting paint is on the car: the configure descriptor arrived.
    width, height = page.video_size()
    page.wait_pixel_near(*body_probe(SceneState(), width, height), hex_rgb("#c81e1e"))
    yield page
    if page.state() not in ("ended", ""):
        page.leave()


def wait_view_changed(page: Configurator, ref: list[int], min_diff: float = 3.0) -> float:
    page.page.wait_for_function(
        f"(ref) => ({_FRAME_DIFF_JS})(ref) > {min_diff}", arg=ref, timeout=10_000, polling=100
    )
    return float(page.page.evaluate(_FRAME_DIFF_JS, ref))


def test_emit_ui_interaction_changes_decoded_pixels(streaming: Configurator) -> None:
    page = streaming
    x, y = body_probe(SceneState(), *page.video_size())
    # A JSON descriptor, through the library's own API...
    page.page.evaluate(
        "(c) => window.streamfleet.pixelStreaming.emitUIInteraction({type: 'set_paint', color: c})",
        GREEN,
    )
    page.wait_pixel_near(x, y, hex_rgb(GREEN))
    # ...and a string descriptor, as Unreal apps often use.
    page.page.evaluate(
        "(c) => window.streamfleet.pixelStreaming.emitUIInteraction('set_paint ' + c)", YELLOW
    )
    page.wait_pixel_near(x, y, hex_rgb(YELLOW))
    assert page.errors == []


def test_mouse_drag_wheel_and_keys_change_the_view(streaming: Configurator) -> None:
    page = streaming
    box = page.page.locator("#player video").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    ref = page.page.evaluate(_FRAME_DIFF_JS, None)
    page.page.mouse.move(cx, cy)
    page.page.mouse.down()
    page.page.mouse.move(cx + box["width"] / 4, cy, steps=8)
    page.page.mouse.up()
    assert wait_view_changed(page, ref) > 3.0  # a quarter width drag is a quarter turn

    ref = page.page.evaluate(_FRAME_DIFF_JS, None)
    page.page.mouse.wheel(0, -240)  # two notches towards the user: zoom in
    wait_view_changed(page, ref)

    ref = page.page.evaluate(_FRAME_DIFF_JS, None)
    page.page.keyboard.press("ArrowRight")
    wait_view_changed(page, ref)
    assert page.errors == []


def test_request_latency_test_resolves(streaming: Configurator) -> None:
    result: dict[str, Any] = streaming.page.evaluate(
        """() => new Promise((resolve, reject) => {
            const ps = window.streamfleet.pixelStreaming;
            setTimeout(() => reject(new Error('no latencyTestResult in 10 s')), 10000);
            ps.addEventListener('latencyTestResult', (e) => {
                const t = e.data.latencyTimings;
                resolve({receipt: t.ReceiptTimeMs, transmission: t.TransmissionTimeMs,
                         start: t.testStartTimeMs, browser: t.browserReceiptTimeMs,
                         network: t.networkLatency});
            });
            if (!ps.requestLatencyTest()) reject(new Error('requestLatencyTest refused'));
        })"""
    )
    assert result["transmission"] >= result["receipt"] > 0
    assert result["browser"] >= result["start"] > 0
    assert 0 <= result["network"] < 5000


def signal_requests(stack: Stack, session_id: str) -> int:
    """A session's WebSocket connections to its agent's signalling endpoint, at the router.

    nginx logs a WebSocket when it closes, so only finished connections count.
    """
    return sum(
        1
        for e in stack.router_log(REGION)
        if e["path"].endswith("/signal") and e["session_id"] == session_id
    )


def test_server_ended_session_closes_once_and_is_not_retried(
    stack: Stack, context: BrowserContext
) -> None:
    view = create_session(stack, "e2e-bare-library")
    page = context.new_page()
    page.goto(stack.configurator_url)  # the origin that serves the bundle; Start is not clicked
    page.evaluate(BARE_LIBRARY_JS, [view["stream"]["signaling_url"], view["stream"]["token"]])
    stack.ops(f"/v1/admin/sessions/{view['session_id']}/end", method="POST")
    page.wait_for_function("window.__bare.disconnects.length > 0", timeout=15_000)
    # The library waits 2 s before each of its retries: watch well past the first.
    time.sleep(5)
    disconnects = page.evaluate("window.__bare.disconnects")
    # Once, with the reason (the agent learns an operator's end only as an "end"
    # command, so its reason is the agent's: `ended_by_control_plane`), and final.
    [closed] = disconnects
    assert re.fullmatch(r"session ended: \w+", closed["eventString"]), closed
    assert closed["allowClickToReconnect"] is True  # the library's "I will not retry"
    # One connection, closed by the server; no further connection attempt.
    assert signal_requests(stack, view["session_id"]) == 1


def test_the_page_says_why_the_server_ended_it(stack: Stack, streaming: Configurator) -> None:
    page = streaming
    session_id = page.page.evaluate("window.streamfleet.session.id")
    stack.ops(f"/v1/admin/sessions/{session_id}/end", method="POST")
    page.wait_state("ended", timeout_ms=15_000)
    assert "operator took the streaming machine out of service" in page.message()
    assert page.page.is_enabled("#start")


def renderer_pid(stack: Stack, instance_id: str) -> int:
    log = (stack.workdir / "agents" / f"{REGION}-{instance_id}.log").read_text()
    pids = re.findall(r"renderer started pid=(\d+)", log)
    assert pids, "the agent logged no renderer start"
    return int(pids[-1])


def test_renderer_crash_the_page_streams_again_with_its_configuration(
    stack: Stack, streaming: Configurator, artifacts: Path
) -> None:
    """Re-placement end to end (issue 14): kill -9 the renderer of a streaming
    session; without any user action the page shows the stream again, the same
    session, with the visitor's configuration."""
    page = streaming
    x, y = body_probe(SceneState(), *page.video_size())
    page.page.click(f".swatch[data-color='{YELLOW}']")  # the visitor's choice
    page.wait_pixel_near(x, y, hex_rgb(YELLOW))
    session_id = page.page.evaluate("window.streamfleet.session.id")
    page.page.evaluate(_WATCH_DISCONNECTS_JS)
    [instance] = [i for i in stack.instances(REGION) if i["state"] == "streaming"]
    os.kill(renderer_pid(stack, instance["instance_id"]), signal.SIGKILL)
    page.page.wait_for_function("window.__disconnects.length > 0", timeout=15_000)
    # Not an end (docs/pixel-streaming.md, close codes): a close the library may retry.
    closed = page.page.evaluate("window.__disconnects")[0]
    assert closed["allowClickToReconnect"] is False, closed
    # The session's events bring the new assignment; the page follows it.
    page.page.wait_for_function(
        "window.streamfleet.session?.replacements === 1", timeout=STREAM_TIMEOUT_MS
    )
    page.wait_streaming()
    assert page.page.evaluate("window.streamfleet.session.id") == session_id
    # A fresh renderer, configured by the page as the visitor left it.
    page.wait_pixel_near(x, y, hex_rgb(YELLOW))
    page.wait_state("connected", timeout_ms=15_000)
    page.page.screenshot(path=str(artifacts / "configurator-after-renderer-crash.png"))
    assert page.errors == []
    assert page.page.get_attribute("#message", "data-kind") != "error", page.message()


def test_reconnect_within_the_window_keeps_the_scene(streaming: Configurator) -> None:
    page = streaming
    x, y = body_probe(SceneState(), *page.video_size())
    page.page.evaluate(
        "(c) => window.streamfleet.pixelStreaming.emitUIInteraction({type: 'set_paint', color: c})",
        GREEN,
    )
    page.wait_pixel_near(x, y, hex_rgb(GREEN))
    session_id = page.page.evaluate("window.streamfleet.session.id")
    page.page.evaluate(_WATCH_DISCONNECTS_JS)
    # The library drops its signalling connection and comes back, as after a network blip.
    page.page.evaluate("window.streamfleet.pixelStreaming.reconnect()")
    page.page.wait_for_function("window.__disconnects.length > 0", timeout=10_000)
    page.wait_streaming()
    assert page.page.evaluate("window.streamfleet.session.id") == session_id
    # Same renderer, same scene: the paint the page never knew about is still there.
    assert page.wait_pixel_near(x, y, hex_rgb(GREEN))
    page.wait_state("connected", timeout_ms=10_000)


def test_touch_drag_changes_the_view(stack: Stack, browser: Browser) -> None:
    ctx = browser.new_context(viewport=VIEWPORT, has_touch=True)
    try:
        page = Configurator.open(ctx, stack)
        page.start()
        page.wait_streaming()
        width, height = page.video_size()
        page.wait_pixel_near(*body_probe(SceneState(), width, height), hex_rgb("#c81e1e"))
        box = page.page.locator("#player video").bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        ref = page.page.evaluate(_FRAME_DIFF_JS, None)
        # Real touch events (CDP), which the library's TouchController sends as
        # TouchStart/TouchMove/TouchEnd.
        cdp = ctx.new_cdp_session(page.page)
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]}
        )
        for step in range(1, 9):
            point = {"x": x + step * box["width"] / 32, "y": y}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        wait_view_changed(page, ref)
        page.leave()
        assert page.errors == []
    finally:
        ctx.close()
