"""`RegionUpgrade` against moto's Auto Scaling group, with a control plane fake
that drains the way the broker does: a serving instance only after its session."""

from __future__ import annotations

from dataclasses import dataclass, field

from regional_stack.pool.asg import Candidate
from regional_stack.pool.ports import InstanceRecord
from regional_stack.pool.upgrade import RegionUpgrade
from simulators.local_aws import LocalAws, aws_client
from tests.integration.pool.conftest import make_region

REGION = "eu-west-1"


@dataclass
class Broker:
    """States by instance id; `drain` as region_drain.lua: serving ones keep serving."""

    records: dict[str, InstanceRecord] = field(default_factory=dict)

    def set(self, iid: str, state: str, session: str | None = None, draining: bool = False) -> None:
        self.records[iid] = InstanceRecord(iid, state, session, draining=draining)

    def instances(self, region: str) -> list[InstanceRecord]:
        return list(self.records.values())

    def drain(self, region: str, instance_id: str) -> None:
        r = self.records[instance_id]
        serving = r.session_id is not None
        self.set(instance_id, r.state if serving else "draining", r.session_id, draining=True)

    def end_session(self, iid: str) -> None:
        r = self.records[iid]
        self.set(iid, "draining" if r.draining else "ready", None, r.draining)


def test_rolling_upgrade_keeps_ready_capacity_and_waits_for_the_session(aws: LocalAws) -> None:
    region = make_region(aws, REGION, 31)
    region.group.set_desired(3)
    serving, *idle = sorted(i.instance_id for i in region.group.describe().instances)
    broker = Broker()
    broker.set(serving, "streaming", "sess-1")
    for iid in idle:
        broker.set(iid, "ready")
    before = set(broker.records)
    images = [
        i["ImageId"]
        for i in aws_client("ec2", REGION, aws.endpoint_url).describe_images(Owners=["amazon"])[
            "Images"
        ]
    ]
    old_image = region.group.template_image(region.group.describe())
    new_image = next(i for i in images if i != old_image)

    passes, ready_seen, serving_terminated_live = [0], [], []

    def world_moves(_: float) -> None:
        """Between passes: new instances boot and register; the user leaves at pass 8."""
        passes[0] += 1
        members = {i.instance_id for i in region.group.describe().instances}
        for gone in set(broker.records) - members:
            if broker.records[gone].session_id is not None:
                serving_terminated_live.append(gone)
            del broker.records[gone]
        for iid in members - set(broker.records):
            broker.set(iid, "ready")
        if passes[0] == 8:
            broker.end_session(serving)
        ready_seen.append(sum(1 for r in broker.records.values() if r.state == "ready"))

    upgrade = RegionUpgrade(
        region=REGION, port=broker, group=region.group, interval_s=0, timeout_s=60,
        sleep=world_moves,
    )  # fmt: skip
    final = upgrade.run(image_id=new_image)

    assert final.done and not serving_terminated_live
    view = region.group.describe()
    now = region.group.image_ids([i.instance_id for i in view.instances])
    assert set(now.values()) == {new_image} and not set(now) & before
    assert min(ready_seen) >= 2, ready_seen  # the two that were ready at the start
    # Nothing was terminated while the session lived: the old serving one went last.
    assert passes[0] >= 8
    # A fallback type after the upgrade keeps the new image, not the first version's.
    region.group.use_candidate(Candidate("g5.2xlarge", region.stack.subnets), view)
    assert region.group.template_image(region.group.describe()) == new_image


def test_an_instance_that_already_left_the_group_counts_as_terminated(aws: LocalAws) -> None:
    """The pool manager may scale an old instance in between the upgrade's plan and its
    terminate call: AWS then answers ValidationError, moto a bare 500. Either way the
    instance is gone, which is what the upgrade wanted; an instance still in the group
    whose terminate fails is a real failure."""
    region = make_region(aws, REGION, 32)
    region.group.set_desired(2)
    gone, kept = sorted(i.instance_id for i in region.group.describe().instances)
    region.group.terminate(gone, decrement=True)  # the pool manager's scale-in
    upgrade = RegionUpgrade(region=REGION, port=Broker(), group=region.group, interval_s=0)
    upgrade._terminate(gone)  # no error: it already left
    assert gone not in region.group.describe().by_id()
    upgrade._terminate(kept)
    assert kept not in region.group.describe().by_id()
