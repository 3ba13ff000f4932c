"""Pure reconcile planning: the control plane's view + the group's view -> actions.

Safety rules live here, in one place:
- an instance holding a user (reserved, streaming, or any session id) is protected
  from scale-in and is never terminated, whatever else is true;
- scale-in is two-phase: drain chosen `ready` instances through the control plane
  (so the broker stops assigning them), terminate them on a later pass once they
  report `draining` with no session;
- `lost` instances are replaced (terminated without decrementing the desired size).
"""

from __future__ import annotations

from dataclasses import dataclass

from regional_stack.pool.asg import GroupView
from regional_stack.pool.policies import DemandSnapshot
from regional_stack.pool.ports import (
    IN_USE_STATES,
    STARTING_STATES,
    InstanceRecord,
    PoolState,
)

LIVE_LIFECYCLE = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})


@dataclass(frozen=True)
class Housekeeping:
    protect: tuple[str, ...]
    unprotect: tuple[str, ...]
    replace_lost: tuple[str, ...]
    terminate_drained: tuple[str, ...]


def housekeeping(group: GroupView, records: dict[str, InstanceRecord]) -> Housekeeping:
    protect, unprotect, lost, drained = [], [], [], []
    for inst in group.instances:
        rec = records.get(inst.instance_id)
        if rec is None or inst.lifecycle_state not in LIVE_LIFECYCLE:
            continue  # not registered yet (booting) or already leaving: leave it alone
        if rec.protected:
            if not inst.protected:
                protect.append(inst.instance_id)
            continue
        if inst.protected:
            # Cleared this pass; termination (if any) waits for the next pass, so a
            # protected instance is never terminated in the pass that sees it.
            unprotect.append(inst.instance_id)
            continue
        if rec.state == "lost":
            lost.append(inst.instance_id)
        elif rec.state == "draining":
            drained.append(inst.instance_id)
    return Housekeeping(tuple(protect), tuple(unprotect), tuple(lost), tuple(drained))


def snapshot(
    now: float,
    state: PoolState,
    group: GroupView,
    records: dict[str, InstanceRecord],
    lead_time_s: float,
) -> DemandSnapshot:
    """The policy's input, counting launched-but-unregistered instances as provisioning."""
    unregistered = sum(
        1
        for i in group.instances
        if i.instance_id not in records and i.lifecycle_state in LIVE_LIFECYCLE
    )
    not_launched = max(0, group.desired - len(group.instances))
    return DemandSnapshot(
        now=now,
        in_use=state.count(*IN_USE_STATES),
        ready=state.count("ready"),
        provisioning=state.count(*STARTING_STATES) + unregistered + not_launched,
        queue=state.queue_depth,
        arrivals_per_min=state.arrivals_per_min,
        lead_time_s=lead_time_s,
    )


def effective_size(group: GroupView, housekeeping: Housekeeping) -> int:
    """The group's size once the drained instances already chosen are gone."""
    return group.desired - len(housekeeping.terminate_drained)


def choose_idle(
    group: GroupView, records: dict[str, InstanceRecord], count: int
) -> tuple[str, ...]:
    """Up to ``count`` idle instances to drain, the longest-idle first."""
    members = group.by_id()
    idle = [
        r
        for r in records.values()
        if r.state == "ready"
        and not r.protected
        and r.instance_id in members
        and not members[r.instance_id].protected
        and members[r.instance_id].lifecycle_state == "InService"
    ]
    idle.sort(key=lambda r: (-r.state_age_s, r.instance_id))
    return tuple(r.instance_id for r in idle[: max(0, count)])
