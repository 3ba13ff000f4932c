"""InsufficientInstanceCapacity injected through botocore's event hooks, against moto."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from regional_stack.pool.damping import DampingConfig
from regional_stack.pool.manager import PoolManager
from regional_stack.pool.policies import StaticPolicy
from simulators.local_aws import LocalAws
from tests.integration.pool.conftest import FakeControlPlane, Region, make_region


class Capacity:
    """Refuses SetDesiredCapacity while the group points at a refused type or first subnet."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.refused_types: set[str] = set()
        self.refused_subnets: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def __call__(self, **kwargs: Any) -> None:
        view = self.region.group.describe()  # the same client: describe is not hooked
        version = view.launch_template_version or "1"
        data = self.region.group.ec2.describe_launch_template_versions(
            LaunchTemplateId=view.launch_template_id or "", Versions=[version]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        where = (data["InstanceType"], view.subnets[0])
        self.calls.append(where)
        if where[0] in self.refused_types or where[1] in self.refused_subnets:
            raise ClientError(
                {"Error": {"Code": "InsufficientInstanceCapacity", "Message": "no g4dn here"}},
                "SetDesiredCapacity",
            )


def setup(aws: LocalAws) -> tuple[Region, Capacity, FakeControlPlane, PoolManager]:
    region = make_region(aws, "eu-west-1", 12)
    capacity = Capacity(region)
    region.group.autoscaling.meta.events.register(
        "before-call.auto-scaling.SetDesiredCapacity", capacity
    )
    cp = FakeControlPlane()
    pm = PoolManager(
        region="eu-west-1",
        port=cp,
        group=region.group,
        policy=StaticPolicy(3),
        damping=DampingConfig(scale_in_cooldown_s=0.0),
        instance_types=("g4dn.2xlarge", "g5.2xlarge"),
        constraint_hold_s=0.0,
    )
    return region, capacity, cp, pm


def types_of(region: Region) -> set[str]:
    view = region.group.describe()
    return set(region.group.instance_types([i.instance_id for i in view.instances]).values())


def test_fallback_instance_type_is_tried(aws: LocalAws) -> None:
    region, capacity, cp, pm = setup(aws)
    capacity.refused_types = {"g4dn.2xlarge"}
    report = pm.reconcile_once()
    assert region.group.describe().desired == 3
    assert types_of(region) == {"g5.2xlarge"}
    # Primary type in both subnet orders (3 attempts each), then the fallback type.
    assert [c[0] for c in capacity.calls] == ["g4dn.2xlarge"] * 6 + ["g5.2xlarge"]
    assert report.capacity_errors == 2 and not report.constrained
    assert cp.constraint_reports == []


def test_fallback_subnet_is_tried(aws: LocalAws) -> None:
    region, capacity, _, pm = setup(aws)
    first, second = region.stack.subnets
    capacity.refused_subnets = {first}
    pm.reconcile_once()
    view = region.group.describe()
    assert view.desired == 3 and view.subnets[0] == second
    assert {i.availability_zone for i in view.instances} == {"eu-west-1b"}
    assert types_of(region) == {"g4dn.2xlarge"}


def test_bounded_retries_constrained_then_recovery(aws: LocalAws) -> None:
    region, capacity, cp, pm = setup(aws)
    capacity.refused_types = {"g4dn.2xlarge", "g5.2xlarge"}
    report = pm.reconcile_once()
    # 2 types x 2 subnet orders, 3 attempts each: bounded, then it gives up.
    assert len(capacity.calls) == 12
    assert report.constrained and region.group.describe().desired == 0
    assert cp.constrained and cp.constraint_reports[-1][0] is True
    assert "InsufficientInstanceCapacity" in cp.constraint_reports[-1][1]

    capacity.refused_types = set()  # the errors stop
    report = pm.reconcile_once()
    assert not report.constrained and region.group.describe().desired == 3
    assert cp.constraint_reports[-1][0] is False and cp.constrained is False
