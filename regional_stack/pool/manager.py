"""One region's pool manager: read demand, ask the policy, apply it to the group.

The pure parts (policy, damping, plan) decide; this class sequences the I/O.
Without a fresh view from the control plane it changes nothing: it cannot tell
which instances serve users.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field

from botocore.exceptions import ClientError

from regional_stack.pool.asg import (
    CAPACITY_CODES,
    AutoScalingGroup,
    Candidate,
    GroupView,
    candidates,
    error_code,
)
from regional_stack.pool.damping import DampingConfig, DampingState, damp
from regional_stack.pool.leadtime import LeadTimeTracker
from regional_stack.pool.plan import choose_idle, effective_size, housekeeping, snapshot
from regional_stack.pool.policies import Policy
from regional_stack.pool.ports import ControlPlanePort, InstanceRecord

log = logging.getLogger("streamfleet.pool")


@dataclass(frozen=True)
class LeadTimes:
    cold_s: float = 300.0
    warm_s: float = 75.0


@dataclass(frozen=True)
class PassReport:
    target: int
    desired: int
    reason: str
    protected: tuple[str, ...] = ()
    unprotected: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    terminated: tuple[str, ...] = ()
    drained: tuple[str, ...] = ()
    constrained: bool = False
    capacity_errors: int = 0
    in_service: int = 0  # group instances InService (for metrics)
    ready: int = 0  # ready per the control plane: the warm, assignable pool
    warm_pool: int = 0  # stopped instances in the group's warm pool


@dataclass
class PoolManager:
    region: str
    port: ControlPlanePort
    group: AutoScalingGroup
    policy: Policy
    damping: DampingConfig = field(default_factory=DampingConfig)
    instance_types: Sequence[str] = ()  # primary first; empty = the template's own only
    subnets: Sequence[str] = ()  # preference order; empty = the group's own
    lead_times: LeadTimes = field(default_factory=LeadTimes)
    constraint_hold_s: float = 120.0
    clock: Callable[[], float] = time.time
    _damping: DampingState = field(default_factory=DampingState)
    _candidate: int = 0
    _constrained: bool = False
    _last_capacity_error: float = float("-inf")
    _first_seen: dict[str, float] = field(default_factory=dict)
    _measured: set[str] = field(default_factory=set)
    _lead: LeadTimeTracker | None = None

    def reconcile_once(self) -> PassReport:
        now = self.clock()
        state = self.port.pool_state(self.region)
        records = {r.instance_id: r for r in self.port.instances(self.region)}
        group = self.group.describe()
        self._measure_lead_times(now, group, records)

        chores = housekeeping(group, records)
        if chores.protect:
            self.group.protect(chores.protect, True)
        if chores.unprotect:
            self.group.protect(chores.unprotect, False)
        for iid in chores.replace_lost:
            self.group.terminate(iid, decrement=False)  # the group launches a replacement
        for iid in chores.terminate_drained:
            self.group.terminate(iid, decrement=True)

        lead = self._lead_tracker(group).estimate()
        snap = snapshot(now, state, group, records, lead)
        wanted = self.policy(snap)
        current = effective_size(group, chores)
        target = min(wanted.target, group.max_size)
        decision = damp(current, target, now, self._damping, self.damping)
        self._damping = decision.state

        drained: tuple[str, ...] = ()
        errors, grew = 0, False
        if decision.desired > current:
            errors, grew = self._scale_out(decision.desired, group)
        elif decision.desired < current:
            drained = choose_idle(group, records, current - decision.desired)
            for iid in drained:
                self.port.drain(self.region, iid)

        self._sync_constraint(now, state.constrained, errors, grew)
        report = PassReport(
            target=wanted.target,
            desired=decision.desired,
            reason=f"{wanted.reason}; {decision.reason}",
            protected=chores.protect,
            unprotected=chores.unprotect,
            replaced=chores.replace_lost,
            terminated=chores.terminate_drained,
            drained=drained,
            constrained=self._constrained,
            capacity_errors=errors,
            in_service=sum(1 for i in group.instances if i.lifecycle_state == "InService"),
            ready=state.count("ready"),
            warm_pool=group.warm_instances,
        )
        # A pass that changes something is part of the story; a steady one is not.
        acted = decision.desired != current or errors or drained or any(astuple(chores))
        log.log(
            logging.INFO if acted else logging.DEBUG, "pool %s: %s", self.region, report,
            extra={"region": self.region, "target": report.target, "desired": report.desired,
                   "decision": report.reason},
        )  # fmt: skip
        return report

    def _scale_out(self, desired: int, group: GroupView) -> tuple[int, bool]:
        """Raise the desired size, walking the fallback candidates on capacity errors.

        Returns (candidates that failed, whether the group grew); each failure has
        already been retried (bounded, jittered) by the group's retry policy.
        """
        options = self._candidates(group)
        failures = 0
        for _ in range(len(options)):
            try:
                self.group.set_desired(desired)
            except ClientError as exc:
                if error_code(exc) not in CAPACITY_CODES:
                    raise
                failures += 1
                self._last_capacity_error = self.clock()
                self._candidate = (self._candidate + 1) % len(options)
                nxt = options[self._candidate]
                log.warning("pool %s: %s; falling back to %s", self.region, error_code(exc), nxt)
                self.group.use_candidate(nxt, group)
            else:
                return failures, True
        return failures, False

    def _candidates(self, group: GroupView) -> list[Candidate]:
        if not self.subnets:
            self.subnets = group.subnets  # remembered: fallbacks reorder the group's list
        types = list(self.instance_types) or [
            next((i.instance_type for i in group.instances if i.instance_type), "default")
        ]
        return candidates(types, self.subnets)

    def _sync_constraint(self, now: float, reported: bool, errors: int, grew: bool) -> None:
        if errors and not grew:
            self._constrained = True
            reason = "InsufficientInstanceCapacity: every instance type and subnet refused"
        elif grew:
            self._constrained = False  # a scale-out just succeeded: capacity is back
            reason = "capacity available"
        elif now - self._last_capacity_error >= self.constraint_hold_s:
            self._constrained = False
            reason = "no capacity error recently"
        else:
            reason = "holding constraint"
        if self._constrained != reported:
            self.port.report_constraint(self.region, self._constrained, reason)

    def _lead_tracker(self, group: GroupView) -> LeadTimeTracker:
        configured = (
            self.lead_times.warm_s if group.warm_pool_configured else self.lead_times.cold_s
        )
        if self._lead is None or self._lead.configured_s != configured:
            self._lead = LeadTimeTracker(configured_s=configured)
        return self._lead

    def _measure_lead_times(
        self, now: float, group: GroupView, records: dict[str, InstanceRecord]
    ) -> None:
        """Launch-to-ready per instance: first seen in the group -> first seen ready."""
        tracker = self._lead_tracker(group)
        for inst in group.instances:
            self._first_seen.setdefault(inst.instance_id, now)
            rec = records.get(inst.instance_id)
            if rec is not None and rec.state == "ready" and inst.instance_id not in self._measured:
                self._measured.add(inst.instance_id)
                became_ready = now - rec.state_age_s
                tracker.record(max(0.0, became_ready - self._first_seen[inst.instance_id]))
        live = {i.instance_id for i in group.instances}
        for gone in set(self._first_seen) - live:
            del self._first_seen[gone]
            self._measured.discard(gone)
