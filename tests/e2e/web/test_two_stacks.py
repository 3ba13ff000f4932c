"""Two `streamfleet up` stacks started at once on one host both serve a browser session.

They share the loopback instance addresses (127.11.x.y for eu-central-1), so only
the ports that follow --base-port keep them apart: agent, streamer, router, TURN
and its relay range, Redis, moto and the control plane. Each browser streams
through its own stack's router and TURN from its own stack's instance.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from simulators.local_stack.plan import PORT_SPAN, first_instance_ip
from simulators.local_stack.testing import free_base_port, running_stack
from tests.e2e.web.conftest import VIEWPORT, Configurator, Stack

REGION = "eu-central-1"


def two_base_ports() -> tuple[int, int]:
    first = free_base_port()
    for _ in range(50):
        second = free_base_port()
        if abs(second - first) >= PORT_SPAN:
            return first, second
    raise RuntimeError("no second free block of ports")


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runtime")
    path.chmod(0o700)
    return path


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory, runtime_dir: Path) -> Iterator[list[Stack]]:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)}
    args = ("--regions", REGION, "--pool-size", "1")
    workdirs = [tmp_path_factory.mktemp(f"up-{n}") for n in range(2)]
    ups = [
        running_stack(*args, base_port=base, env=env, workdir=workdir)
        for base, workdir in zip(two_base_ports(), workdirs, strict=True)
    ]
    with ExitStack() as exits, ThreadPoolExecutor(2) as pool:
        # Both start at once: their startups (and port use) overlap.
        started = [pool.submit(exits.enter_context, up) for up in ups]
        yield [Stack(f.result(), w) for f, w in zip(started, workdirs, strict=True)]


def test_both_stacks_stream_to_a_browser_at_the_same_time(
    stacks: list[Stack], browser: Browser
) -> None:
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in stacks]
    try:
        pages = [Configurator.open(ctx, s) for ctx, s in zip(contexts, stacks, strict=True)]
        for page in pages:
            page.start()
        for page in pages:
            page.wait_streaming()
            assert page.region() == REGION
            assert page.errors == []
        for stack in stacks:
            (instance,) = stack.instances(REGION)
            assert instance["state"] == "streaming"
            # The same address in both stacks.
            assert instance["private_ip"] == first_instance_ip(REGION)
        for page in pages:
            page.leave()
    finally:
        for ctx in contexts:
            ctx.close()


def test_status_finds_each_running_stack(stacks: list[Stack], runtime_dir: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)}
    env.pop("STREAMFLEET_ADMIN_TOKEN", None)

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streamfleet.cli", "status", *args],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    both = status()
    assert both.returncode == 2 and "several" in both.stderr
    for stack in stacks:
        url = stack.info["control_plane_url"]
        assert url in both.stderr
        one = status("--control-plane-url", url, "--json")  # its token from the state file
        assert one.returncode == 0, one.stderr
        assert REGION in one.stdout
