"""Faults of the live replay, at scenario times during the peak.

Control-plane replica kill and Redis failover are the chaos run's own
(bench/chaos_faults.py); capacity errors are InsufficientInstanceCapacity
answers to the region's pool manager (simulators/launch_day/live_capacity.py);
a region drained for an upgrade goes through the ops API's drain.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

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


class RegionDrain(Fault):
    """One region drained for an upgrade: every instance is drained through the ops
    API (no force: sessions finish first); the pool manager terminates drained
    instances and launches replacements, as in an image roll."""

    def __init__(self, region: str) -> None:
        super().__init__(name=f"region_drain:{region}")
        self.region = region

    async def inject(self, stack: ChaosStack, target: Target) -> None:
        base = f"{stack.plan.control_plane_url}/v1/pools/{self.region}/instances"
        headers = {"Authorization": f"Bearer {stack.plan.admin_token}"}
        drained = 0
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(base) as resp:
                body = await resp.json()
            for inst in body.get("instances", []):
                if inst.get("state") in ("ready", "reserved", "streaming", "recycling"):
                    async with http.post(
                        f"{base}/{inst['instance_id']}/drain", json={"force": False}
                    ) as resp:
                        drained += resp.status in (200, 202)
        self.notes["drained"] = drained

    async def heal(self, stack: ChaosStack, target: Target) -> None:
        return  # the pool manager replaces the drained instances by itself


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
        "region_drain": Scheduled(12.25 * 3600, 0, RegionDrain(regions[0])),
    }
    if sentinel:
        known["sentinel_failover"] = Scheduled(11.75 * 3600, 0, SentinelFailover())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; choose from {sorted(known)}")
    return [known[n] for n in names]
