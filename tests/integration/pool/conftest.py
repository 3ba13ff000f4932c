"""A real moto server (the one allowed stand-in for AWS) and an in-process control plane.

The in-process `FakeControlPlane` stands in for the control plane only: it holds
the instance states the broker would report, keyed by the ASG's instance ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from regional_stack.pool.asg import AutoScalingGroup, RetryPolicy
from regional_stack.pool.ports import InstanceRecord, PoolState
from simulators.local_aws import (
    LocalAws,
    RegionalStack,
    aws_client,
    create_regional_stack,
    fake_aws_environment,
)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in fake_aws_environment().items():
            mp.setenv(key, value)
        aws = LocalAws().start()
        try:
            yield aws
        finally:
            aws.stop()


@pytest.fixture
def aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    for key, value in fake_aws_environment().items():
        monkeypatch.setenv(key, value)
    local_aws.reset()
    return local_aws


@dataclass
class FakeControlPlane:
    states: dict[str, InstanceRecord] = field(default_factory=dict)
    queue: int = 0
    arrivals: tuple[int, ...] = ()
    constrained: bool = False
    constraint_reports: list[tuple[bool, str]] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)

    def set(self, iid: str, state: str, session: str | None = None, age: float = 60.0) -> None:
        self.states[iid] = InstanceRecord(iid, state, session, state_age_s=age)

    def pool_state(self, region: str) -> PoolState:
        counts: dict[str, int] = {}
        for r in self.states.values():
            counts[r.state] = counts.get(r.state, 0) + 1
        return PoolState(region, counts, self.queue, 0, self.constrained, self.arrivals)

    def instances(self, region: str) -> list[InstanceRecord]:
        return list(self.states.values())

    def report_constraint(self, region: str, constrained: bool, reason: str) -> None:
        self.constrained = constrained
        self.constraint_reports.append((constrained, reason))

    def drain(self, region: str, instance_id: str) -> None:
        self.drained.append(instance_id)
        self.set(instance_id, "draining")


@dataclass(frozen=True)
class Region:
    stack: RegionalStack
    group: AutoScalingGroup


def make_region(aws: LocalAws, name: str, octet: int, **kwargs: object) -> Region:
    stack = create_regional_stack(aws.endpoint_url, name, cidr_second_octet=octet, **kwargs)  # type: ignore[arg-type]
    group = AutoScalingGroup(
        aws_client("autoscaling", name, aws.endpoint_url),
        aws_client("ec2", name, aws.endpoint_url),
        stack.group_name,
        RetryPolicy(attempts=3, base_s=0.01, max_s=0.05),
    )
    return Region(stack, group)
