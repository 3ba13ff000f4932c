"""Rolling upgrade of a region's GPU group, planned one pass at a time (pure).

An instance is *old* when it runs another image than the launch-template
version the group now points at (a deploy made a new version; the group never
replaces instances by itself: they may be streaming). The image, not the
version number, is compared, so the pool manager's fallback versions (same
image, another instance type) are not old.

Safety rules, in one place:
- a serving instance (session, reserved, streaming) is never terminated: it is
  only flagged to drain, which takes it out of service once its session ends;
- idle old instances go a batch at a time, and only while the ready count
  stays at `keep_ready` (the pool's warm size) or above: when it would not,
  the group first grows (surge) and new instances take their place; only a
  group already at its maximum size dips below, a batch at a time;
- old instances that reached `draining` without a session are terminated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from regional_stack.pool.ports import IN_USE_STATES, STARTING_STATES

LIVE_LIFECYCLE = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})


@dataclass(frozen=True)
class Member:
    """One instance of the group, as the upgrade sees it."""

    instance_id: str
    image_id: str | None
    lifecycle_state: str  # the group's view (InService, Pending, Terminating, ...)
    state: str | None  # the control plane's view; None: not registered yet
    session_id: str | None = None
    draining: bool = False  # ops (or this upgrade) already asked it to drain

    @property
    def serving(self) -> bool:
        return self.session_id is not None or self.state in IN_USE_STATES

    @property
    def ready(self) -> bool:
        return self.state == "ready" and not self.draining


@dataclass(frozen=True)
class UpgradeStep:
    drain: tuple[str, ...] = ()
    terminate: tuple[str, ...] = ()
    surge_to: int | None = None  # raise the group's desired size to this first
    done: bool = False
    old_left: int = 0
    reason: str = ""


def plan_step(
    members: Sequence[Member],
    *,
    target_image: str,
    desired: int,
    max_size: int,
    keep_ready: int,
    batch: int = 1,
) -> UpgradeStep:
    live = [m for m in members if m.lifecycle_state in LIVE_LIFECYCLE]
    old = [m for m in live if m.image_id != target_image]
    if not old:
        return UpgradeStep(done=True, reason="every instance runs the target image")

    terminate = tuple(m.instance_id for m in old if m.state == "draining" and m.session_id is None)
    # Serving: flagged now, replaced after the session; never counted as ready anyway.
    serving = [m.instance_id for m in old if m.serving and not m.draining]
    # Registered but not ready yet (booting, recycling without a session, lost): no
    # user is on them, and they do not count as ready either.
    not_ready = [
        m.instance_id
        for m in old
        if not m.serving and not m.draining and m.state not in (None, "ready", "draining")
    ]
    idle = [m.instance_id for m in old if m.ready and not m.serving]

    ready_now = sum(1 for m in live if m.ready and not m.serving)
    room = max(0, ready_now - keep_ready)
    take = min(batch, len(idle), room)
    drain = tuple(serving + not_ready + idle[:take])

    surge_to = None
    wanted = min(batch, len(idle)) - take  # idle ones held back by keep_ready
    starting = sum(
        1
        for m in live
        if m.image_id == target_image and (m.state is None or m.state in STARTING_STATES)
    )
    if wanted > starting:
        surge_to = min(max_size, desired + wanted - starting)
        if surge_to <= desired:
            surge_to = None
            if starting == 0:
                # At its maximum size the group cannot grow: waiting would never end.
                drain += tuple(idle[take : take + wanted])
    reason = (
        f"{len(old)} old: drain {len(drain)} ({len(serving)} after their session), "
        f"terminate {len(terminate)}, ready {ready_now}/{keep_ready}"
        + (f", surge to {surge_to}" if surge_to is not None else "")
    )
    return UpgradeStep(drain, terminate, surge_to, False, len(old), reason)
