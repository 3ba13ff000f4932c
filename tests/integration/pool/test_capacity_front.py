"""The live replay's capacity fault (simulators/launch_day/live_capacity.py): a pool
manager reaching moto through the front gets InsufficientInstanceCapacity for a
refused region, as from AWS, and reports the constraint; other calls pass."""

from __future__ import annotations

from regional_stack.pool.asg import AutoScalingGroup, RetryPolicy
from regional_stack.pool.damping import DampingConfig
from regional_stack.pool.manager import PoolManager
from regional_stack.pool.policies import StaticPolicy
from simulators.launch_day.live_capacity import CapacityFront
from simulators.local_aws import LocalAws, aws_client
from tests.integration.pool.conftest import FakeControlPlane, make_region


def test_refused_region_gets_capacity_errors_and_reports_the_constraint(aws: LocalAws) -> None:
    region = make_region(aws, "us-west-2", 14)
    front = CapacityFront(aws.endpoint_url).start()
    try:
        group = AutoScalingGroup(
            aws_client("autoscaling", "us-west-2", front.url),
            aws_client("ec2", "us-west-2", front.url),
            region.stack.group_name,
            RetryPolicy(attempts=2, base_s=0.01, max_s=0.02),
        )
        cp = FakeControlPlane()
        pm = PoolManager(
            region="us-west-2", port=cp, group=group, policy=StaticPolicy(3),
            damping=DampingConfig(scale_in_cooldown_s=0.0), constraint_hold_s=0.0,
        )  # fmt: skip
        front.refused.add("us-west-2")
        refused = pm.reconcile_once()
        assert refused.capacity_errors >= 1 and refused.constrained
        assert group.describe().desired == 0
        assert cp.constraint_reports and cp.constraint_reports[-1][0] is True
        assert front.refusals >= 1

        front.refused.discard("us-west-2")
        grown = pm.reconcile_once()
        assert grown.capacity_errors == 0 and not grown.constrained
        assert group.describe().desired == 3
    finally:
        front.stop()
