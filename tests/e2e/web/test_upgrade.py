"""A rolling upgrade on a real `streamfleet up`: `streamfleet upgrade` replaces
every GPU instance with a new image while a browser streams, and the stream
is never ended; the instance serving it is replaced only after the user leaves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from simulators.local_aws import aws_client, fake_aws_environment
from tests.e2e.web.conftest import Configurator, Stack, start_stack

REGION = "eu-central-1"
GROUP = "streamfleet-gpu"
# The buffer policy keeps this many ready beside the ones in use: the warm size.
WARM = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory, "up-upgrade", "--regions", REGION, "--pool-size", str(WARM),
        "--policy", "buffer", "--demo-visit-from",
    )  # fmt: skip


def group_images(stack: Stack) -> dict[str, str]:
    """Instance id -> image id of every live member of the group (moto's EC2 view)."""
    autoscaling = aws_client("autoscaling", REGION, stack.info["moto_url"])
    ec2 = aws_client("ec2", REGION, stack.info["moto_url"])
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    ids = [
        i["InstanceId"]
        for i in group["Instances"]
        if i["LifecycleState"] in ("InService", "Pending")
    ]
    if not ids:
        return {}
    found = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["ImageId"] for r in found for i in r["Instances"]}


def another_image(stack: Stack, current: str) -> str:
    ec2 = aws_client("ec2", REGION, stack.info["moto_url"])
    images = [i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]]
    return next(i for i in images if i != current)


def start_upgrade(stack: Stack, image_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **fake_aws_environment()}
    env.update({
        "STREAMFLEET_POOL_CONTROL_PLANE_URL": stack.info["control_plane_url"],
        "STREAMFLEET_POOL_ADMIN_TOKEN": stack.info["admin_token"],
        "STREAMFLEET_POOL_AWS_ENDPOINT_URL": stack.info["moto_url"],
    })  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streamfleet.cli", "upgrade", "--regions", REGION,
             "--image-id", image_id, "--interval", "1", "--timeout", "300"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip


def ready_count(stack: Stack) -> int:
    return sum(1 for i in stack.instances(REGION) if i["state"] == "ready")


def test_upgrade_replaces_every_instance_and_never_ends_the_live_session(
    stack: Stack, context: BrowserContext, artifacts: Path
) -> None:
    page = Configurator.open(context, stack, visit_from="frankfurt")
    page.start()
    page.wait_streaming()
    page.wait_state("connected", timeout_ms=10_000)
    session_id = page.page.evaluate("window.streamfleet.session.id")
    serving = next(i for i in stack.instances(REGION) if i["session_id"] == session_id)
    deadline = time.monotonic() + 60
    while ready_count(stack) < WARM:  # the pool manager refills the warm buffer
        assert time.monotonic() < deadline, "warm buffer not refilled"
        time.sleep(0.2)
    before = group_images(stack)
    (old_image,) = set(before.values())
    new_image = another_image(stack, old_image)

    log = artifacts / "upgrade.log"  # kept: what each pass decided
    proc = start_upgrade(stack, new_image, log)
    min_ready, frames = WARM, page.frames_decoded()
    try:
        # Phase 1: every idle instance is replaced; the serving one keeps streaming.
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"idle instances not replaced:\n{log.read_text()}"
            assert page.state() == "connected", "the live session was ended"
            rows = {i["instance_id"]: i for i in stack.instances(REGION)}
            assert rows[serving["instance_id"]]["session_id"] == session_id
            min_ready = min(min_ready, sum(1 for i in rows.values() if i["state"] == "ready"))
            images = group_images(stack)
            old = {iid for iid, image in images.items() if image != new_image}
            fresh_ready = [
                iid for iid, image in images.items()
                if image == new_image and rows.get(iid, {}).get("state") == "ready"
            ]  # fmt: skip
            if old == {serving["instance_id"]} and len(fresh_ready) >= WARM:
                break
            time.sleep(0.5)
        # The stream still flows after its neighbours were replaced, and the instance
        # serving it is flagged to drain after the session, not before.
        page.page.wait_for_function(
            "async (n) => (await (async () => { let d = 0; (await window.streamfleet.pc"
            ".getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video')"
            " d = s.framesDecoded; }); return d; })()) > n + 10",
            arg=frames,
            timeout=10_000,
        )
        assert rows[serving["instance_id"]]["draining"] is True
        assert proc.poll() is None, "the upgrade must wait for the live session"

        # Phase 2: the user leaves; only then is the last old instance replaced.
        page.leave()
        proc.wait(timeout=120)
        assert proc.returncode == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)

    after = group_images(stack)
    assert after and set(after.values()) == {new_image}, after
    assert not set(after) & set(before), "an instance from before the upgrade is still there"
    assert min_ready >= WARM, f"ready dropped to {min_ready} during the upgrade"
    deadline = time.monotonic() + 60
    while ready_count(stack) < WARM:
        assert time.monotonic() < deadline, "warm buffer not back after the upgrade"
        time.sleep(0.2)
    assert page.errors == []
