"""Faults of the live replay, at scenario times during the peak.

Control-plane replica kill and Redis failover are the chaos run's own
(bench/chaos_faults.py); capacity errors are made on the region's moto group:
its MaxSize is held at its current size, so the pool manager's scale-out is
refused by the group (moto raises ValidationError, not AWS's
InsufficientInstanceCapacity: moto has no capacity model) until healed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.chaos_faults import Fault, ReplicaKill, SentinelFailover, Target
from bench.chaos_stack import ChaosStack
from simulators.local_aws import aws_client
from simulators.local_stack.fleet import GROUP

GROUP_MAX = 600


def set_group_max(stack: ChaosStack, region: str, max_size: int | None) -> int:
    """Set the group's MaxSize (None: its current size); returns what was set."""
    client = aws_client("autoscaling", region, f"http://127.0.0.1:{stack.plan.moto_port}")
    if max_size is None:
        group = client.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
        max_size = int(group["AutoScalingGroups"][0]["DesiredCapacity"])
    client.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=max_size)
    return max_size


class CapacityErrors(Fault):
    def __init__(self, region: str) -> None:
        super().__init__(name=f"capacity_errors:{region}")
        self.region = region

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        self.notes["held_at"] = await asyncio.to_thread(set_group_max, stack, self.region, None)

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        await asyncio.to_thread(set_group_max, stack, self.region, GROUP_MAX)


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
