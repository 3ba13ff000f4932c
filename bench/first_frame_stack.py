"""Click to first frame in a real browser, on the whole local stack.

30 sessions, one after the other, each timed inside headless Chromium on the
reference configurator page: from the click on "Start" (which calls
`POST /v1/sessions`) to the first decoded video frame presented
(`requestVideoFrameCallback` on the video
of Epic's Pixel Streaming library, which the page streams through). Signalling goes through the region's nginx+Lua
router, media through its coturn relay (the page is relay-only), exactly as a
visitor's browser would. Between sessions the page leaves (DELETE) and the
benchmark waits, off the clock, until the instance is ready again: each
session starts on a warm instance, which is what the goal is about.

Runs against a `streamfleet up` that is already running (`--ready-json` with
its READY line's JSON, or `--control-plane-url` + `--admin-token`), or starts
one itself (`--regions eu-central-1 --pool-size 2`) when given neither.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from simulators.local_stack.testing import running_stack
from streamfleet.wire import PoolsView

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
GOAL_P50_MS = 1000
GOAL_P99_MS = 2000

# Runs in the page: click Start, resolve with the milliseconds until the first
# frame is presented, or reject with the page's own message on failure. Epic's
# library creates its <video> per stream, so the page itself records the first
# presented frame (requestVideoFrameCallback) in `streamfleet.firstFrameAt`.
CLICK_TO_FIRST_FRAME_JS = """() => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const deadline = performance.now() + 20000;
    const poll = () => {
        const at = window.streamfleet.firstFrameAt;
        if (at !== null && at >= t0) return resolve(at - t0);
        if (performance.now() > deadline) return reject(new Error(
            'no frame in 20 s: ' + document.getElementById('message').textContent));
        setTimeout(poll, 5);
    };
    document.getElementById('start').click();
    poll();
})"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def pools(info: dict[str, Any]) -> PoolsView:
    request = urllib.request.Request(
        info["control_plane_url"] + "/v1/pools",
        headers={"Authorization": f"Bearer {info['admin_token']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return PoolsView.model_validate_json(resp.read())


def wait_ready_instance(info: dict[str, Any], timeout_s: float = 60.0) -> None:
    """Off the clock: until some region has a ready instance and no live session."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        regions = pools(info).regions.values()
        if any(r.count("ready") > 0 for r in regions) and not any(r.live_sessions for r in regions):
            return
        time.sleep(0.1)
    raise TimeoutError(f"no ready instance within {timeout_s:.0f} s")


def one_session(page: Page, info: dict[str, Any]) -> tuple[float, str]:
    wait_ready_instance(info)
    ms = float(page.evaluate(CLICK_TO_FIRST_FRAME_JS))
    region = page.inner_text("#fig-region").strip()
    page.click("#leave")
    page.wait_for_function("document.body.dataset.state === 'ended'", timeout=10_000)
    return ms, region


@contextmanager
def stack(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    if args.ready_json:
        yield json.loads(args.ready_json)
    elif args.control_plane_url:
        url = args.control_plane_url.rstrip("/")
        yield {
            "control_plane_url": url,
            "configurator_url": f"{url}/web/configurator/index.html",
            "admin_token": args.admin_token,
        }
    else:
        log("starting streamfleet up --regions eu-central-1 --pool-size 2 ...")
        with (
            tempfile.TemporaryDirectory(prefix="bench-first-frame-stack-") as tmp,
            running_stack(
                "--regions", "eu-central-1", "--pool-size", "2", workdir=Path(tmp)
            ) as info,
        ):
            yield info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--ready-json", help="the JSON of a running `streamfleet up`'s READY line")
    parser.add_argument("--control-plane-url", help="a running stack's control plane")
    parser.add_argument("--admin-token", help="its admin token (with --control-plane-url)")
    args = parser.parse_args()

    times: list[float] = []
    regions: dict[str, int] = {}
    with stack(args) as info, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(info["configurator_url"])
            for n in range(1, args.sessions + 1):
                ms, region = one_session(page, info)
                times.append(ms)
                regions[region] = regions.get(region, 0) + 1
                log(f"session {n:2d}: first frame after {ms:7.1f} ms ({region})")
        finally:
            browser.close()

    p50, p99 = pct(times, 0.50), pct(times, 0.99)
    result = {
        "bench": "first_frame_stack",
        "sessions": len(times),
        "path": "headless Chromium -> session API -> nginx+Lua router (signalling) + coturn relay (media)",
        "regions": regions,
        "first_frame_p50_ms": round(p50, 1),
        "first_frame_p99_ms": round(p99, 1),
        "first_frame_mean_ms": round(statistics.fmean(times), 1),
        "first_frame_min_ms": round(min(times), 1),
        "first_frame_max_ms": round(max(times), 1),
        "goal_p50_ms": GOAL_P50_MS,
        "goal_p99_ms": GOAL_P99_MS,
        "meets_goal": p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
