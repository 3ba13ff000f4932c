"""Browser end-to-end fixtures: the system Chromium driven by Playwright, and
real `streamfleet up` stacks (simulators.local_stack.testing.running_stack).

Nothing here is mocked: each stack is the whole system as `streamfleet up`
starts it (Redis, moto, control plane, pool managers, routers, coturn, agents
with renderer stubs), and the pages are the ones in web/, served by its control
plane. A missing Chromium or a stack that does not come up fails the tests.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from simulators.local_stack.testing import running_stack

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "e2e-web"
VIEWPORT: ViewportSize = {"width": 1280, "height": 760}
# Media can take a few seconds on two busy cores: the stream deadline is generous,
# every wait is still bounded.
STREAM_TIMEOUT_MS = 30_000


# Module scope, not session: Playwright's sync API keeps an event loop running in
# the main thread while it is open, which would break every asyncio test after it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass(frozen=True)
class Stack:
    """The READY line of one running `streamfleet up`, and its working directory."""

    info: dict[str, Any]
    workdir: Path

    @property
    def configurator_url(self) -> str:
        return str(self.info["configurator_url"])

    @property
    def status_url(self) -> str:
        return str(self.info["status_url"])

    def ops(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            self.info["control_plane_url"] + path,
            method=method,
            headers={"Authorization": f"Bearer {self.info['admin_token']}"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def instances(self, region: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.ops(f"/v1/pools/{region}/instances")["instances"]
        return listed

    def router_log(self, region: str) -> list[dict[str, Any]]:
        """The region router's JSON access log, one dict per request."""
        path = self.workdir / "routers" / region / "logs" / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_stack(
    tmp: pytest.TempPathFactory, name: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """`streamfleet up ARGS`; `env` adds variables (e.g. control-plane settings) for its run."""
    workdir = tmp.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        with running_stack(*args, workdir=workdir) as info:
            yield Stack(info, workdir)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: its own storage, so its own client id."""
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        yield ctx
    finally:
        ctx.close()


# ---- the configurator page, as a test drives it --------------------------------

CITY_IPS = {
    "frankfurt": "81.10.1.2",
    "dublin": "86.40.1.2",
    "virginia": "3.80.1.2",
    "seattle": "52.10.1.2",
}

_DECODED_JS = """async () => {
    const pc = window.streamfleet.pc;
    if (!pc) return 0;
    let decoded = 0;
    (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') decoded = s.framesDecoded;
    });
    return decoded;
}"""

_PIXEL_JS = """([x, y]) => {
    const v = document.querySelector('#player video');
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(x - 1, y - 1, 3, 3).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
    return sum.map((s) => Math.round(s / 9));
}"""


@dataclass
class Configurator:
    page: Page
    errors: list[str]

    @classmethod
    def open(
        cls, ctx: BrowserContext, stack: Stack, *, visit_from: str | None = None
    ) -> Configurator:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(stack.configurator_url)
        if visit_from is not None:
            page.click("#demo summary")
            page.select_option("#visit-from", CITY_IPS[visit_from])
        return cls(page, errors)

    def start(self) -> None:
        self.page.click("#start")

    def state(self) -> str:
        return str(self.page.evaluate("document.body.dataset.state || ''"))

    def wait_state(self, state: str, timeout_ms: int = STREAM_TIMEOUT_MS) -> None:
        self.page.wait_for_function(
            "(s) => document.body.dataset.state === s", arg=state, timeout=timeout_ms
        )

    def frames_decoded(self) -> int:
        return int(self.page.evaluate(_DECODED_JS))

    def wait_streaming(self) -> None:
        """Video is decoding: a picture size, and getStats' framesDecoded keeps growing."""
        self.page.wait_for_function(
            "document.querySelector('#player video')?.videoWidth > 0", timeout=STREAM_TIMEOUT_MS
        )
        first = self.frames_decoded()
        self.page.wait_for_function(
            f"async (n) => (await ({_DECODED_JS})()) >= n + 10",
            arg=first,
            timeout=STREAM_TIMEOUT_MS,
            polling=200,
        )

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """Mean RGB of a 3x3 patch of the decoded picture (video drawn into a canvas)."""
        rgb = self.page.evaluate(_PIXEL_JS, [x, y])
        return int(rgb[0]), int(rgb[1]), int(rgb[2])

    def wait_pixel_near(
        self, x: int, y: int, rgb: tuple[int, int, int], tolerance: int = 40
    ) -> tuple[int, int, int]:
        self.page.wait_for_function(
            f"""([x, y, want, tol]) => {{
                const got = ({_PIXEL_JS})([x, y]);
                return got.every((v, i) => Math.abs(v - want[i]) <= tol);
            }}""",
            arg=[x, y, list(rgb), tolerance],
            timeout=10_000,
            polling=100,
        )
        return self.pixel(x, y)

    def video_size(self) -> tuple[int, int]:
        w, h = self.page.evaluate(
            "[document.querySelector('#player video').videoWidth,"
            " document.querySelector('#player video').videoHeight]"
        )
        return int(w), int(h)

    def region(self) -> str:
        return self.page.inner_text("#fig-region").strip()

    def message(self) -> str:
        return self.page.inner_text("#message").strip()

    def leave(self) -> None:
        self.page.click("#leave")
        self.wait_state("ended", timeout_ms=10_000)


def hex_rgb(color: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})", color)
    assert m is not None
    return int(m[1], 16), int(m[2], 16), int(m[3], 16)


# Epic's library alone on a page of the stack's origin, with none of the
# configurator's logic around it: the bundle from the lock file, its Config and
# PixelStreaming, the session's signalling URL with the token. Records its
# disconnect events and resolves once video plays.
BARE_LIBRARY_JS = """async ([url, token]) => {
    const lib = await import('./vendor/pixelstreamingfrontend.js');
    const parent = document.createElement('div');
    document.body.append(parent);
    const config = new lib.Config({useUrlParams: false, initialSettings: {
        ss: url + '?token=' + encodeURIComponent(token), AutoConnect: false,
        AutoPlayVideo: true, StartVideoMuted: true, WaitForStreamer: true}});
    const ps = new lib.PixelStreaming(config, {videoElementParent: parent});
    window.__bare = {ps, disconnects: []};
    ps.addEventListener('webRtcDisconnected', (e) => window.__bare.disconnects.push(e.data));
    const playing = new Promise((resolve) => ps.addEventListener('videoInitialized', resolve));
    ps.connect();
    await playing;
}"""


def session_view(stack: Stack, session_id: str, secret: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{stack.info['control_plane_url']}/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {secret}"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        view: dict[str, Any] = json.loads(resp.read())
    return view


def create_session(stack: Stack, client_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """A new session through the session API, once assigned (a previous test's
    instance may still be recycling: then it queues first)."""
    request = urllib.request.Request(
        stack.info["control_plane_url"] + "/v1/sessions",
        data=json.dumps({"client_id": client_id, "model": "roadster"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        view: dict[str, Any] = json.loads(resp.read())
    secret = view["session_secret"]
    deadline = time.monotonic() + timeout_s
    while view["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)
        view = session_view(stack, view["session_id"], secret)
    assert view["state"] == "assigned", view
    return {**view, "session_secret": secret}
