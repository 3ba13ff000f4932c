"""An Auto Scaling group of streamfleet nodes of one role, and what every node needs.

Every node: its own IAM role (Session Manager instead of SSH, read of the
wheelhouse object only, write to its own log group only), a launch template
with IMDSv2 required, an encrypted root volume and detailed monitoring, and the
user data of `boot.NodeBoot`.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from streamfleet_cdk.boot import NodeBoot
from streamfleet_cdk.config import AmiSource
from streamfleet_cdk.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parents[4]

# Built by `make wheelhouse` (scripts/wheelhouse.py): the streamfleet wheel, every
# locked dependency as a wheel, and requirements-ROLE.txt pinning all of them by hash.
DEFAULT_WHEELHOUSE = REPO_ROOT / "dist" / "wheelhouse"
WHEELHOUSE_ROLES = ("server", "agent")
AGENT_LOCK = "requirements-agent.txt"


def wheelhouse_path(scope: Construct) -> Path:
    """The wheelhouse folder: context value `wheelhouse` (`-c wheelhouse=DIR`) or dist/wheelhouse."""
    given = scope.node.try_get_context("wheelhouse")
    path = Path(given) if given else DEFAULT_WHEELHOUSE
    missing = [r for r in WHEELHOUSE_ROLES if not (path / f"requirements-{r}.txt").is_file()]
    if missing or not list(path.glob("streamfleet-*.whl")):
        raise FileNotFoundError(
            f"no wheelhouse at {path} (run `make wheelhouse`, or pass -c wheelhouse=DIR)"
        )
    return path


def wheelhouse_bundle(scope: Construct) -> s3_assets.Asset:
    """What every node installs from, offline and hash-checked (zipped at deploy, one per region)."""
    return s3_assets.Asset(scope, "Wheelhouse", path=str(wheelhouse_path(scope)))


def machine_image(ami: AmiSource, region: str, image_id: str | None = None) -> ec2.IMachineImage:
    """`image_id` (an image baked by this app, e.g. gpu_image.GpuImageBuilder) wins."""
    if image_id is not None:
        return ec2.MachineImage.generic_linux({region: image_id})
    pinned = ami.ids.get(region)
    if pinned is not None:
        return ec2.MachineImage.generic_linux({region: pinned})
    return ec2.MachineImage.from_ssm_parameter(ami.ssm_parameter)


class NodeGroup(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role_description: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        instance_type: str,
        ami: AmiSource,
        region: str,
        bundle: s3_assets.Asset,
        log_group: logs.ILogGroup,
        boot: NodeBoot,
        min_size: int,
        max_size: int,
        volume_gib: int = 20,
        public_ip: bool = False,
        group_name: str | None = None,
        elb_health_check: bool = False,
        rolling_update: bool = True,
        image_id: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=role_description,
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
            ],
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "Session Manager is the only operator access to instances (no SSH keys, no open "
            "port 22); AWS maintains this policy with the Systems Manager agent's needs.",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[bundle.bucket.arn_for_objects(bundle.s3_object_key)],
            )
        )
        log_group.grant_write(self.role)
        self.log_group = log_group

        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            instance_type=ec2.InstanceType(instance_type),
            machine_image=machine_image(ami, region, image_id),
            role=self.role,
            security_group=security_group,
            user_data=boot.user_data(),
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            instance_metadata_tags=False,
            associate_public_ip_address=public_ip,
            detailed_monitoring=True,
            ebs_optimized=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name=ami.root_device_name,
                    volume=ec2.BlockDeviceVolume.ebs(
                        volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        health = (
            autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=Duration.minutes(10),
            )
            if elb_health_check
            else autoscaling.HealthChecks.ec2(grace_period=Duration.minutes(10))
        )
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            vpc=vpc,
            vpc_subnets=subnets,
            launch_template=self.launch_template,
            min_capacity=min_size,
            max_capacity=max_size,
            auto_scaling_group_name=group_name,
            health_checks=health,
            update_policy=(
                autoscaling.UpdatePolicy.rolling_update(
                    min_instances_in_service=min_size, max_batch_size=1
                )
                if rolling_update
                else None
            ),
            group_metrics=[autoscaling.GroupMetrics.all()],
        )
        acknowledge(
            self.group,
            "AwsSolutions-AS3",
            "Scaling events are not mailed: the pool manager and CloudWatch alarms act on "
            "capacity, and every activity stays in the group's activity history.",
        )


def log_group(scope: Construct, id: str, retention: logs.RetentionDays) -> logs.LogGroup:
    return logs.LogGroup(scope, id, retention=retention, removal_policy=RemovalPolicy.RETAIN)
