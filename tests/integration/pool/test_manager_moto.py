"""The pool manager against a real moto server: scale out, safe scale in, replacement, regions."""

from __future__ import annotations

from regional_stack.pool.damping import DampingConfig
from regional_stack.pool.manager import PoolManager
from regional_stack.pool.policies import BufferPolicy, StaticPolicy
from simulators.local_aws import LocalAws
from tests.integration.pool.conftest import FakeControlPlane, Region, make_region

NO_COOLDOWN = DampingConfig(scale_in_cooldown_s=0.0, hysteresis=0, hysteresis_percent=0.0)


def manager(region: Region, cp: FakeControlPlane, policy: object, **kw: object) -> PoolManager:
    return PoolManager(
        region=region.stack.region,
        port=cp,
        group=region.group,
        policy=policy,  # type: ignore[arg-type]
        damping=NO_COOLDOWN,
        **kw,  # type: ignore[arg-type]
    )


def ids(region: Region) -> list[str]:
    return sorted(i.instance_id for i in region.group.describe().instances)


def test_scale_out_to_the_policy_target(aws: LocalAws) -> None:
    region = make_region(aws, "eu-west-1", 12)
    cp = FakeControlPlane(queue=2)
    report = manager(region, cp, BufferPolicy(buffer_size=3)).reconcile_once()
    view = region.group.describe()
    assert (report.target, view.desired, len(view.instances)) == (5, 5, 5)
    assert {i.instance_type for i in view.instances} == {"g4dn.2xlarge"}


def test_scale_in_never_touches_serving_instances(aws: LocalAws) -> None:
    region = make_region(aws, "eu-west-1", 12, desired=6)
    members = ids(region)
    serving = {members[0]: "streaming", members[1]: "reserved", members[2]: "streaming"}
    cp = FakeControlPlane()
    for n, iid in enumerate(members):
        cp.set(iid, serving.get(iid, "ready"), f"s{n}" if iid in serving else None, age=100.0 + n)
    pm = manager(region, cp, StaticPolicy(3))

    first = pm.reconcile_once()  # protect the three serving, drain the three idle
    assert sorted(first.protected) == sorted(serving)
    assert sorted(first.drained) == sorted(set(members) - set(serving))
    view = region.group.describe()
    assert {i.instance_id for i in view.instances if i.protected} == set(serving)
    assert view.desired == 6  # nothing terminated before the broker confirmed the drain

    second = pm.reconcile_once()  # the drained ones are terminated, with the size
    assert sorted(second.terminated) == sorted(set(members) - set(serving))
    assert ids(region) == sorted(serving)
    assert region.group.describe().desired == 3
    ec2_states = region.group.ec2.describe_instances(InstanceIds=sorted(serving))
    assert {i["State"]["Name"] for r in ec2_states["Reservations"] for i in r["Instances"]} == {
        "running"
    }

    # Sessions end: protection is cleared, and only then can those instances go.
    for iid in serving:
        cp.set(iid, "ready", age=10.0)
    third = pm.reconcile_once()
    assert sorted(third.unprotected) == sorted(serving)
    assert not any(i.protected for i in region.group.describe().instances)


def test_policy_zero_keeps_a_streaming_instance(aws: LocalAws) -> None:
    region = make_region(aws, "eu-west-1", 12, desired=2)
    a, b = ids(region)
    cp = FakeControlPlane()
    cp.set(a, "streaming", "s1")
    cp.set(b, "ready")
    pm = manager(region, cp, StaticPolicy(0))
    for _ in range(3):
        pm.reconcile_once()
    assert ids(region) == [a]


def test_lost_instance_is_replaced_unless_it_serves(aws: LocalAws) -> None:
    region = make_region(aws, "eu-west-1", 12, desired=3)
    a, b, c = ids(region)
    cp = FakeControlPlane()
    cp.set(a, "lost")
    cp.set(b, "lost", "s-b")  # lost but its session not ended yet: hands off
    cp.set(c, "streaming", "s-c")
    report = manager(region, cp, StaticPolicy(3)).reconcile_once()
    assert report.replaced == (a,)
    after = ids(region)
    assert a not in after and b in after and c in after
    assert len(after) == 3  # the group launched a replacement
    assert region.group.describe().desired == 3


def test_two_regions_are_kept_apart(aws: LocalAws) -> None:
    eu = make_region(aws, "eu-west-1", 12)
    us = make_region(aws, "us-east-1", 21)
    manager(eu, FakeControlPlane(), StaticPolicy(4)).reconcile_once()
    manager(us, FakeControlPlane(), StaticPolicy(2)).reconcile_once()
    assert (eu.group.describe().desired, us.group.describe().desired) == (4, 2)
    assert not set(ids(eu)) & set(ids(us))
    manager(us, FakeControlPlane(), StaticPolicy(5)).reconcile_once()
    assert (eu.group.describe().desired, us.group.describe().desired) == (4, 5)


def test_warm_pool_is_detected_and_shortens_the_lead_time(aws: LocalAws) -> None:
    warm = make_region(aws, "eu-west-1", 12)
    cold = make_region(aws, "us-east-1", 21, warm_pool=False)
    assert warm.group.describe().warm_pool_configured
    assert not cold.group.describe().warm_pool_configured
    cp = FakeControlPlane(arrivals=(6,) * 10)
    from regional_stack.pool.policies import PredictivePolicy

    t_warm = manager(warm, cp, PredictivePolicy(), clock=lambda: 1200.0).reconcile_once().target
    t_cold = manager(cold, cp, PredictivePolicy(), clock=lambda: 1200.0).reconcile_once().target
    assert t_warm < t_cold  # 75 s of arrivals to cover instead of 300 s
