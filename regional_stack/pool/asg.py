"""The region's EC2 Auto Scaling group through boto3: read it, resize it, protect, terminate.

Transient AWS errors (throttling, InsufficientInstanceCapacity, ...) are retried
here under one named policy (jittered exponential backoff, bounded attempts);
what to do once that is exhausted (fallback types and subnets, "constrained")
is the manager's decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client

CAPACITY_CODES = frozenset(
    {"InsufficientInstanceCapacity", "InsufficientCapacity", "InstanceLimitExceeded"}
)
TRANSIENT_CODES = CAPACITY_CODES | {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalFailure",
    "ScalingActivityInProgress",
    "ResourceContention",
}
T = TypeVar("T")


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_s: float = 0.5
    max_s: float = 8.0

    def call(self, fn: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception(lambda e: error_code(e) in TRANSIENT_CODES),
            wait=wait_random_exponential(multiplier=self.base_s, max=self.max_s),
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        )
        return retrying(fn)


@dataclass(frozen=True)
class AsgInstance:
    instance_id: str
    lifecycle_state: str  # Pending, InService, Terminating, Warmed:Stopped, ...
    health_status: str
    protected: bool
    instance_type: str | None
    availability_zone: str | None


@dataclass(frozen=True)
class GroupView:
    name: str
    desired: int
    min_size: int
    max_size: int
    instances: tuple[AsgInstance, ...]
    subnets: tuple[str, ...]
    launch_template_id: str | None
    launch_template_version: str | None
    warm_pool_configured: bool
    warm_instances: int

    def by_id(self) -> dict[str, AsgInstance]:
        return {i.instance_id: i for i in self.instances}


@dataclass(frozen=True)
class Candidate:
    """Where to launch next: an instance type and the subnets in order of preference."""

    instance_type: str
    subnets: tuple[str, ...]


def candidates(types: Sequence[str], subnets: Sequence[str]) -> list[Candidate]:
    """Every type with every rotation of the subnets, primary first."""
    subs = list(subnets) or [""]
    rotations = [tuple(subs[r:] + subs[:r]) for r in range(len(subs))]
    return [Candidate(t, tuple(s for s in rot if s)) for t in types for rot in rotations]


class AutoScalingGroup:
    def __init__(
        self,
        autoscaling: AutoScalingClient,
        ec2: EC2Client,
        group_name: str,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.autoscaling = autoscaling
        self.ec2 = ec2
        self.name = group_name
        self.retry = retry

    def describe(self) -> GroupView:
        groups = self.retry.call(
            lambda: self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])
        )["AutoScalingGroups"]
        if not groups:
            raise LookupError(f"Auto Scaling group {self.name!r} not found")
        g = groups[0]
        template = g.get("LaunchTemplate") or (
            g.get("MixedInstancesPolicy", {})
            .get("LaunchTemplate", {})
            .get("LaunchTemplateSpecification", {})
        )
        warm = self.retry.call(
            lambda: self.autoscaling.describe_warm_pool(AutoScalingGroupName=self.name)
        )
        instances = tuple(
            AsgInstance(
                instance_id=i["InstanceId"],
                lifecycle_state=i["LifecycleState"],
                health_status=i["HealthStatus"],
                protected=bool(i.get("ProtectedFromScaleIn", False)),
                instance_type=i.get("InstanceType"),
                availability_zone=i.get("AvailabilityZone"),
            )
            for i in g.get("Instances", [])
        )
        return GroupView(
            name=self.name,
            desired=int(g["DesiredCapacity"]),
            min_size=int(g["MinSize"]),
            max_size=int(g["MaxSize"]),
            instances=instances,
            subnets=tuple(s for s in g.get("VPCZoneIdentifier", "").split(",") if s),
            launch_template_id=template.get("LaunchTemplateId"),
            launch_template_version=template.get("Version"),
            warm_pool_configured=bool(warm.get("WarmPoolConfiguration")),
            warm_instances=len(warm.get("Instances", [])),
        )

    def set_desired(self, desired: int) -> None:
        self.retry.call(
            lambda: self.autoscaling.set_desired_capacity(
                AutoScalingGroupName=self.name, DesiredCapacity=desired, HonorCooldown=False
            )
        )

    def protect(self, instance_ids: Sequence[str], protected: bool) -> None:
        ids = list(instance_ids)
        for start in range(0, len(ids), 50):  # the API takes at most 50 ids per call
            batch = ids[start : start + 50]
            self.retry.call(
                lambda b=batch: self.autoscaling.set_instance_protection(  # type: ignore[misc]
                    AutoScalingGroupName=self.name,
                    InstanceIds=b,
                    ProtectedFromScaleIn=protected,
                )
            )

    def terminate(self, instance_id: str, *, decrement: bool) -> None:
        self.retry.call(
            lambda: self.autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement
            )
        )

    def use_candidate(self, candidate: Candidate, view: GroupView) -> None:
        """Point the group at a launch-template version of this type and these subnets first.

        A fallback type is a new version of the group's own launch template with
        only ``InstanceType`` changed (created once, then reused): moto honours it,
        while it ignores mixed-instances overrides. Subnets are reordered, never
        removed, because removing one would make AWS rebalance (terminate) the
        instances living there.
        """
        if view.launch_template_id is None:
            raise LookupError(f"group {self.name} has no launch template to fall back with")
        version = self._version_for_type(
            view.launch_template_id, candidate.instance_type, view.launch_template_version
        )
        update: dict[str, Any] = {
            "AutoScalingGroupName": self.name,
            "LaunchTemplate": {"LaunchTemplateId": view.launch_template_id, "Version": version},
        }
        if candidate.subnets:
            update["VPCZoneIdentifier"] = ",".join(candidate.subnets)
        self.retry.call(lambda: self.autoscaling.update_auto_scaling_group(**update))

    def _version_for_type(
        self, template_id: str, instance_type: str, current: str | None = None
    ) -> str:
        """A version with this type and the image of the group's current version:
        after an upgrade (a version with a new image) fallbacks keep the new image."""
        versions = self.retry.call(
            lambda: self.ec2.describe_launch_template_versions(LaunchTemplateId=template_id)
        )["LaunchTemplateVersions"]
        by_number = {str(v["VersionNumber"]): v for v in versions}
        base = by_number.get(current or "") or min(versions, key=lambda v: int(v["VersionNumber"]))
        image = base.get("LaunchTemplateData", {}).get("ImageId")
        for v in sorted(versions, key=lambda v: int(v["VersionNumber"])):
            data = v.get("LaunchTemplateData", {})
            if data.get("InstanceType") == instance_type and data.get("ImageId") == image:
                return str(v["VersionNumber"])
        # The image is named, not only inherited: moto does not merge SourceVersion.
        wanted: dict[str, Any] = {"InstanceType": instance_type}
        if image:
            wanted["ImageId"] = image
        created = self.retry.call(
            lambda: self.ec2.create_launch_template_version(
                LaunchTemplateId=template_id,
                SourceVersion=str(base["VersionNumber"]),
                VersionDescription=f"streamfleet fallback {instance_type}",
                LaunchTemplateData=wanted,  # type: ignore[arg-type]
            )
        )
        return str(created["LaunchTemplateVersion"]["VersionNumber"])

    def template_image(self, view: GroupView) -> str:
        """The image of the launch-template version the group launches from now."""
        if view.launch_template_id is None:
            raise LookupError(f"group {self.name} has no launch template")
        version = view.launch_template_version or "$Default"
        got = self.retry.call(
            lambda: self.ec2.describe_launch_template_versions(
                LaunchTemplateId=str(view.launch_template_id), Versions=[version]
            )
        )["LaunchTemplateVersions"]
        return str(got[0]["LaunchTemplateData"]["ImageId"])

    def use_image(self, view: GroupView, image_id: str) -> str:
        """A new version of the group's template with `image_id` (all else as the
        current version), and the group pointed at it; returns the version."""
        if view.launch_template_id is None:
            raise LookupError(f"group {self.name} has no launch template")
        template_id = view.launch_template_id
        source = view.launch_template_version or "$Default"
        current = self.retry.call(
            lambda: self.ec2.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[source]
            )
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        data: dict[str, Any] = {"ImageId": image_id}
        if "InstanceType" in current:  # named too, as for fallbacks (moto does not merge)
            data["InstanceType"] = current["InstanceType"]
        created = self.retry.call(
            lambda: self.ec2.create_launch_template_version(
                LaunchTemplateId=template_id,
                SourceVersion=source,
                VersionDescription=f"streamfleet upgrade to {image_id}",
                LaunchTemplateData=data,  # type: ignore[arg-type]
            )
        )
        version = str(created["LaunchTemplateVersion"]["VersionNumber"])
        self.retry.call(
            lambda: self.autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=self.name,
                LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
            )
        )
        return version

    def image_ids(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """EC2's view of the image each instance runs."""
        if not instance_ids:
            return {}
        ids = list(instance_ids)
        reservations = self.retry.call(lambda: self.ec2.describe_instances(InstanceIds=ids))[
            "Reservations"
        ]
        return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r.get("Instances", [])}

    def warm_instance_ids(self) -> list[str]:
        warm = self.retry.call(
            lambda: self.autoscaling.describe_warm_pool(AutoScalingGroupName=self.name)
        )
        return [i["InstanceId"] for i in warm.get("Instances", [])]

    def instance_types(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """EC2's view of the instance types, e.g. to verify a fallback took effect."""
        if not instance_ids:
            return {}
        reservations = self.ec2.describe_instances(InstanceIds=list(instance_ids))["Reservations"]
        return {
            i["InstanceId"]: i["InstanceType"] for r in reservations for i in r.get("Instances", [])
        }
