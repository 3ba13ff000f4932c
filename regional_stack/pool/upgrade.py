"""Rolling upgrade of one region's GPU group: the I/O around upgrade_plan.plan_step.

Runs next to the region's pool manager, through the same two doors: the ops
API (drain) and the Auto Scaling group (desired size, terminate). Whichever
of the two terminates a drained instance first wins; the other finds it gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from regional_stack.pool.asg import AutoScalingGroup, error_code
from regional_stack.pool.ports import ControlPlanePort
from regional_stack.pool.upgrade_plan import Member, UpgradeStep, plan_step

log = logging.getLogger("streamfleet.upgrade")

# Terminating an instance that is already leaving the group (the pool manager was first).
GONE_CODES = frozenset({"ValidationError", "InvalidInstanceID.NotFound"})


class UpgradeTimeout(RuntimeError):
    """Old instances were still serving when the deadline passed (nothing was forced)."""


@dataclass
class RegionUpgrade:
    region: str
    port: ControlPlanePort
    group: AutoScalingGroup
    keep_ready: int | None = None  # None: as many ready as when the upgrade started
    batch: int = 1
    interval_s: float = 10.0
    timeout_s: float = 24 * 3600.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    steps: list[UpgradeStep] = field(default_factory=list)

    def run(self, image_id: str | None = None) -> UpgradeStep:
        """Replace every instance not running the target image; returns the final step.

        `image_id`: first make a new launch-template version with this image and
        point the group at it (otherwise the target is the group's current version).
        """
        view = self.group.describe()
        if image_id is not None:
            version = self.group.use_image(view, image_id)
            log.info(
                "upgrade %s: group now launches version %s (%s)", self.region, version, image_id
            )
            view = self.group.describe()
        target = self.group.template_image(view)
        if self.keep_ready is None:
            self.keep_ready = sum(1 for r in self.port.instances(self.region) if r.state == "ready")
        log.info("upgrade %s: target %s, keep %d ready", self.region, target, self.keep_ready)
        deadline = self.clock() + self.timeout_s
        while True:
            step = self.pass_once(target)
            if step.done:
                return step
            if self.clock() > deadline:
                raise UpgradeTimeout(
                    f"upgrade {self.region}: {step.reason} after {self.timeout_s} s"
                )
            self.sleep(self.interval_s)

    def pass_once(self, target_image: str) -> UpgradeStep:
        view = self.group.describe()
        records = {r.instance_id: r for r in self.port.instances(self.region)}
        images = self.group.image_ids([i.instance_id for i in view.instances])
        members = [
            Member(
                instance_id=i.instance_id,
                image_id=images.get(i.instance_id),
                lifecycle_state=i.lifecycle_state,
                state=records[i.instance_id].state if i.instance_id in records else None,
                session_id=records[i.instance_id].session_id if i.instance_id in records else None,
                draining=records[i.instance_id].draining if i.instance_id in records else False,
            )
            for i in view.instances
        ]
        step = plan_step(
            members,
            target_image=target_image,
            desired=view.desired,
            max_size=view.max_size,
            keep_ready=self.keep_ready or 0,
            batch=self.batch,
        )
        if step.surge_to is not None:
            self.group.set_desired(step.surge_to)
        for iid in step.drain:
            self.port.drain(self.region, iid)
        for iid in step.terminate:
            self._terminate(iid)
        if step.done:
            self._replace_old_warm(target_image)
        self.steps.append(step)
        log.info("upgrade %s: %s", self.region, step.reason)
        return step

    def _terminate(self, instance_id: str) -> None:
        try:
            self.group.terminate(instance_id, decrement=True)
        except ClientError as exc:
            if error_code(exc) not in GONE_CODES:
                raise
        except (BotoCoreError, ResponseParserError):
            # The instance may have left the group meanwhile (the pool manager scaled
            # in): AWS says so with a ValidationError, moto with a bare 500. Gone is
            # what we wanted; anything else is a real failure.
            if instance_id in self.group.describe().by_id():
                raise
            log.info("upgrade %s: %s already left the group", self.region, instance_id)

    def _replace_old_warm(self, target_image: str) -> None:
        """Stopped instances in the EC2 warm pool serve no one: old ones are simply
        terminated, and the warm pool refills from the current version."""
        warm = self.group.warm_instance_ids()
        for iid, image in self.group.image_ids(warm).items():
            if image != target_image:
                self._terminate(iid)
