"""The configurator page against a real `streamfleet up` with three regions.

The stack runs with `--demo-visit-from`, so each test picks the city it
visits from; every region has one warm instance.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from regional_stack.renderer.scene import SceneState, body_probe
from tests.e2e.web.conftest import Configurator, Stack, hex_rgb, start_stack

REGIONS = "eu-central-1,eu-west-1,us-west-2"
BLUE = "#1e6fd9"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, "up-three", "--regions", REGIONS, "--demo-visit-from")


def wait_instance_state(stack: Stack, region: str, instance_id: str, state: str) -> None:
    """Poll the ops API (what the status page shows) until the instance is in `state`."""
    import time

    deadline = time.monotonic() + 30
    seen = None
    while time.monotonic() < deadline:
        seen = next(i for i in stack.instances(region) if i["instance_id"] == instance_id)["state"]
        if seen == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"{instance_id} stayed {seen}, expected {state}")


def test_video_paint_and_leave_frees_the_instance(
    stack: Stack, context: BrowserContext, artifacts: Path
) -> None:
    page = Configurator.open(context, stack, visit_from="frankfurt")
    page.start()
    page.wait_streaming()
    assert page.region() == "eu-central-1"
    # The control plane learns "connected" from the agent, then tells the page by SSE.
    page.wait_state("connected", timeout_ms=10_000)
    width, height = page.video_size()
    assert (width, height) > (0, 0)

    # The car body is the session's starting paint...
    x, y = body_probe(SceneState(), width, height)
    before = page.wait_pixel_near(x, y, hex_rgb("#c81e1e"))
    # ...and a paint change through the data channel visibly changes the decoded picture.
    page.page.click(f".swatch[data-color='{BLUE}']")
    after = page.wait_pixel_near(x, y, hex_rgb(BLUE))
    assert abs(after[2] - before[2]) > 100, (before, after)
    # The frame marker came back with that input: input-to-frame latency is measured.
    page.page.wait_for_function(
        "window.streamfleet.figures.inputToFrameMs !== null", timeout=10_000
    )
    latency = page.page.evaluate("window.streamfleet.figures.inputToFrameMs")
    assert 0 < latency < 5000
    page.page.wait_for_function("window.streamfleet.figures.fps > 1", timeout=10_000)
    page.page.screenshot(path=str(artifacts / "configurator-streaming.png"))

    # The status page shows the instance streaming this session...
    [instance] = stack.instances("eu-central-1")
    status = context.new_page()
    status.goto(stack.status_url)
    row = f"section[data-region='eu-central-1'] tr[data-instance='{instance['instance_id']}']"
    status.wait_for_selector(f"{row}[data-state='streaming']", timeout=10_000)
    assert "#token=" not in status.url, "the admin token must leave the address bar"
    status.screenshot(path=str(artifacts / "status-streaming.png"), full_page=True)

    # ...and leaving frees it: the status page shows it ready again.
    page.leave()
    assert "free for the next visitor" in page.message()
    status.wait_for_selector(f"{row}[data-state='ready']", timeout=30_000)
    status.screenshot(path=str(artifacts / "status-after-leave.png"), full_page=True)
    assert page.errors == []


@pytest.mark.parametrize(
    ("city", "region"), [("frankfurt", "eu-central-1"), ("seattle", "us-west-2")]
)
def test_visit_from_city_lands_in_its_region(
    stack: Stack, context: BrowserContext, city: str, region: str
) -> None:
    page = Configurator.open(context, stack, visit_from=city)
    page.start()
    page.wait_streaming()
    assert page.region() == region
    [instance] = stack.instances(region)
    assert instance["state"] == "streaming"
    page.leave()
    wait_instance_state(stack, region, instance["instance_id"], "ready")


def test_session_ended_by_the_server_says_why(
    stack: Stack, context: BrowserContext, artifacts: Path
) -> None:
    page = Configurator.open(context, stack, visit_from="seattle")
    page.start()
    page.wait_streaming()
    session_id = page.page.evaluate("window.streamfleet.session.id")
    stack.ops(f"/v1/admin/sessions/{session_id}/end", method="POST")
    page.wait_state("ended", timeout_ms=15_000)
    assert "operator took the streaming machine out of service" in page.message()
    page.page.screenshot(path=str(artifacts / "configurator-ended-by-server.png"))
    assert page.page.is_enabled("#start")


def control_plane_pid(stack: Stack) -> int:
    from simulators.local_stack.testing import descendants

    for pid in descendants(stack.info["pid"]):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamfleet.cli" in argv and b"control-plane" in argv:
            return pid
    raise AssertionError("no control-plane process under streamfleet up")


def test_start_rides_out_a_control_plane_restart(stack: Stack, context: BrowserContext) -> None:
    """The visitor clicks Start while the control plane is down (kill -9; `up`
    restarts it, as a service manager would): the page keeps trying the create
    (safe to repeat: same client id, same session) and streams, no error shown."""
    import signal

    page = Configurator.open(context, stack, visit_from="frankfurt")
    old = control_plane_pid(stack)
    os.kill(old, signal.SIGKILL)
    page.start()
    page.wait_streaming()
    assert control_plane_pid(stack) != old  # it really was restarted meanwhile
    assert "Could not start" not in page.message(), page.message()
    page.leave()


def test_status_cli_prints_the_same_figures(stack: Stack) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "streamfleet.cli", "status",
         "--control-plane-url", stack.info["control_plane_url"]],
        env={**os.environ, "STREAMFLEET_ADMIN_TOKEN": stack.info["admin_token"]},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0].split()
    pools = stack.ops("/v1/pools")["regions"]  # nothing changes state while this test runs
    for region in REGIONS.split(","):
        summary = next(line for line in lines if line.startswith(region + " ")).split()
        for column in ("ready", "streaming", "queue"):
            key = "queue_depth" if column == "queue" else None
            want = pools[region][key] if key else pools[region]["instances"][column]
            assert summary[header.index(column)] == str(want), (column, summary)
        for instance in stack.instances(region):
            assert instance["instance_id"] in done.stdout

    refused = subprocess.run(
        [sys.executable, "-m", "streamfleet.cli", "status",
         "--control-plane-url", stack.info["control_plane_url"], "--admin-token", "wrong"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "refused the admin token" in refused.stderr


def test_drain_button_drains_the_instance(stack: Stack, context: BrowserContext) -> None:
    # Last in this module: a drained instance does not come back.
    [instance] = stack.instances("eu-west-1")
    status = context.new_page()
    status.on("dialog", lambda dialog: dialog.accept())  # the "Drain ...?" confirmation
    status.goto(stack.status_url)
    row = f"section[data-region='eu-west-1'] tr[data-instance='{instance['instance_id']}']"
    status.click(f"{row} button.drain")
    status.wait_for_selector(f"{row} button.drain[disabled]", timeout=10_000)
    [after] = [
        i for i in stack.instances("eu-west-1") if i["instance_id"] == instance["instance_id"]
    ]
    assert after["draining"] or after["state"] in ("draining", "terminated")
