"""Faults of the live replay, at scenario times during the peak.

Control-plane replica kill and Redis failover are the chaos run's own
(bench/chaos_faults.py); capacity errors are InsufficientInstanceCapacity
answers to the region's pool manager (simulators/launch_day/live_capacity.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.chaos_faults import Fault, FaultUnavailable, ReplicaKill, SentinelFailover, Target
from bench.chaos_stack import ChaosStack
from simulators.launch_day.live_capacity import CapacityFront
from simulators.local_aws import aws_client
from simulators.local_stack.fleet import GROUP

GROUP_MAX = 600


def set_group_max(stack: ChaosStack, region: str, max_size: int) -> None:
    """The local stack creates groups of at most 20; the launch needs hundreds."""
    client = aws_client("autoscaling", region, f"http://127.0.0.1:{stack.plan.moto_port}")
    client.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=max_size)


class CapacityErrors(Fault):
    def __init__(self, region: str) -> None:
        super().__init__(name=f"capacity_errors:{region}")
        self.region = region

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        _front(stack).refused.add(self.region)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        front = _front(stack)
        front.refused.discard(self.region)
        self.notes["refusals"] = front.refusals


def _front(stack: ChaosStack) -> CapacityFront:
    front = getattr(stack, "capacity", None)
    if not isinstance(front, CapacityFront):
        raise FaultUnavailable("this stack's pool managers reach moto directly")
    return front


@dataclass(frozen=True)
class Scheduled:
    at_s: float  # scenario time of the injection
    hold_s: float  # scenario seconds before it is healed
    fault: Fault


def peak_faults(regions: list[str], sentinel: bool, names: list[str]) -> list[Scheduled]:
    """The scenario's faults during the plateau (10:20-12:30), spread out."""
    known: dict[str, Scheduled] = {
        "replica_kill9": Scheduled(10.75 * 3600, 300, ReplicaKill()),
        "capacity_errors": Scheduled(11.25 * 3600, 1200, CapacityErrors(regions[-1])),
    }
    if sentinel:
        known["sentinel_failover"] = Scheduled(11.75 * 3600, 0, SentinelFailover())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; choose from {sorted(known)}")
    return [known[n] for n in names]
