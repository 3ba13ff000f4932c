"""Re-placement in a real browser when the whole instance dies: kill -9 the
agent and the renderer of a streaming session (its OS gone) on a real
`streamfleet up` with two warm instances; without any user action the page
streams again, the same session, on the other instance, with the visitor's
configuration. (A renderer crash alone: test_epic_library.py.)"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from regional_stack.renderer.scene import SceneState, body_probe
from tests.e2e.web.conftest import STREAM_TIMEOUT_MS, Configurator, Stack, hex_rgb, start_stack

REGION = "eu-central-1"
GREEN = "#1f9d55"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, "up-replace", "--regions", REGION, "--pool-size", "2")


def agent_pid(instance_id: str) -> int:
    """The agent process serving `instance_id` (its environment names it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"agent" in argv and f"STREAMFLEET_AGENT_INSTANCE_ID={instance_id}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no agent process for {instance_id}")


def renderer_pid(stack: Stack, instance_id: str) -> int:
    log = (stack.workdir / "agents" / f"{REGION}-{instance_id}.log").read_text()
    pids = re.findall(r"renderer started pid=(\d+)", log)
    assert pids, "the agent logged no renderer start"
    return int(pids[-1])


def test_instance_killed_the_page_streams_again_elsewhere_with_its_configuration(
    stack: Stack, context: BrowserContext, artifacts: Path
) -> None:
    page = Configurator.open(context, stack)
    page.start()
    page.wait_streaming()
    x, y = body_probe(SceneState(), *page.video_size())
    page.page.click(f".swatch[data-color='{GREEN}']")  # the visitor's choice
    page.wait_pixel_near(x, y, hex_rgb(GREEN))
    session_id = page.page.evaluate("window.streamfleet.session.id")
    [doomed] = [i for i in stack.instances(REGION) if i["state"] == "streaming"]
    iid = doomed["instance_id"]
    renderer = renderer_pid(stack, iid)
    os.kill(agent_pid(iid), signal.SIGKILL)  # the instance's OS dies: agent and renderer
    os.kill(renderer, signal.SIGKILL)
    # Found lost (or its rebooted agent registers without it), the session is
    # re-placed; the page follows its events to the new stream. Bounded: the
    # heartbeat timeout (15 s) plus the reaper plus the new connection.
    page.page.wait_for_function(
        "window.streamfleet.session?.replacements >= 1", timeout=2 * STREAM_TIMEOUT_MS
    )
    page.wait_streaming()
    assert page.page.evaluate("window.streamfleet.session.id") == session_id
    page.wait_pixel_near(x, y, hex_rgb(GREEN))  # a fresh renderer, configured by the page
    page.wait_state("connected", timeout_ms=15_000)
    page.page.screenshot(path=str(artifacts / "configurator-after-instance-loss.png"))
    assert page.errors == []
    assert page.page.get_attribute("#message", "data-kind") != "error", page.message()
    page.leave()
