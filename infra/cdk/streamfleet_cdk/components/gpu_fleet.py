"""The GPU Auto Scaling group of a region: one streaming instance per user.

Private subnets, no public address, an EC2 warm pool of pre-initialised
stopped instances, and a launch lifecycle hook: an instance enters service only
once its agent answers /healthz (boot/gpu-lifecycle.sh). The group has a fixed
name so the pool manager's policy, the agents' hook calls and the pool
manager's settings can name it without a reference cycle.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from streamfleet_cdk.boot import NodeBoot, Unit, script
from streamfleet_cdk.components.network import Network, web_egress
from streamfleet_cdk.components.node_group import NodeGroup, log_group
from streamfleet_cdk.config import AGENT_PORT, AmiSource, RegionConfig
from streamfleet_cdk.nag import acknowledge, finding_arn

LAUNCH_HOOK = "streamfleet-launch"
LIFECYCLE_SCRIPT = "/usr/local/sbin/streamfleet-lifecycle"
# First boot installs the agent's dependencies (aiortc, av, numpy) before it answers.
LAUNCH_HOOK_TIMEOUT = Duration.minutes(30)
AGENT_READY_POLLS = 120  # x 5 s


class GpuFleet(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        region: RegionConfig,
        group_name: str,
        network: Network,
        ami: AmiSource,
        bundle: s3_assets.Asset,
        log_retention: logs.RetentionDays,
        control_plane_url: str,
        agent_secret: secretsmanager.ISecret,
        token_keys: secretsmanager.ISecret,
        image_id: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        gpu = region.gpu
        self.group_name = group_name
        self.config = gpu
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="GPU instances: agent port from routers, media from coturn only",
            allow_all_outbound=False,
        )
        web_egress(self.security_group)
        static_env = {
            "STREAMFLEET_AGENT_CONTROL_PLANE_URL": control_plane_url,
            "STREAMFLEET_AGENT_REGION": region.name,
            "STREAMFLEET_AGENT_PORT": str(AGENT_PORT),
            # The registration nonce survives an agent restart, not the instance.
            "STREAMFLEET_AGENT_NONCE_FILE": "/var/lib/streamfleet/agent-nonce",
        }
        if gpu.renderer_command:
            static_env["STREAMFLEET_AGENT_RENDERER_COMMAND"] = gpu.renderer_command
        self.agent = Unit(
            name="streamfleet-agent",
            description="streamfleet instance agent",
            exec_start="/usr/local/bin/streamfleet agent",
            static_env=static_env,
            secret_env={
                "STREAMFLEET_AGENT_SECRET": agent_secret.secret_name,
                "STREAMFLEET_AGENT_TOKEN_KEYS": token_keys.secret_name,
            },
            imds_env={
                "STREAMFLEET_AGENT_INSTANCE_ID": "instance-id",
                "STREAMFLEET_AGENT_PRIVATE_IP": "local-ipv4",
                "STREAMFLEET_AGENT_INSTANCE_TYPE": "instance-type",
            },
            start_at_boot=False,  # started by the lifecycle unit, in service only
        )
        lifecycle = Unit(
            name="streamfleet-lifecycle",
            description="streamfleet warm pool / launch hook handling",
            exec_start=LIFECYCLE_SCRIPT,
            user="root",
            service_type="oneshot",
        )
        self.log_group = log_group(self, "Logs", log_retention)
        boot = (
            NodeBoot(
                role="gpu",
                region=region.name,
                bundle=bundle,
                log_group=self.log_group,
                extra="agent",
            )
            .add_file(
                LIFECYCLE_SCRIPT,
                script(
                    "gpu-lifecycle.sh",
                    group=group_name,
                    hook=LAUNCH_HOOK,
                    agent_port=AGENT_PORT,
                    ready_polls=AGENT_READY_POLLS,
                ),
            )
            # The renderer needs the GPU device nodes.
            .add_commands("usermod -aG video,render streamfleet || usermod -aG video streamfleet")
            .add_unit(self.agent)
            .add_unit(lifecycle)
        )
        self.nodes = NodeGroup(
            self,
            "Nodes",
            role_description=f"streamfleet GPU instances of {region.name}",
            vpc=network.vpc,
            subnets=network.private_selection,
            security_group=self.security_group,
            instance_type=gpu.primary_type,
            ami=ami,
            region=region.name,
            bundle=bundle,
            log_group=self.log_group,
            boot=boot,
            min_size=gpu.min_size,
            max_size=gpu.max_size,
            volume_gib=gpu.volume_gib,
            public_ip=False,
            group_name=group_name,
            # Never replace instances on deploy: they may be streaming. New launch
            # template versions reach new instances; `instance refresh` the rest.
            rolling_update=False,
            image_id=image_id,
        )
        self.group = self.nodes.group
        self.subnet_ids = network.vpc.select_subnets(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
        ).subnet_ids
        if gpu.warm_pool is not None:
            self.group.add_warm_pool(
                min_size=gpu.warm_pool.min_size,
                max_group_prepared_capacity=gpu.warm_pool.max_prepared_capacity,
                pool_state=autoscaling.PoolState(gpu.warm_pool.state.upper()),
                reuse_on_scale_in=gpu.warm_pool.reuse_on_scale_in,
            )
        self.group.add_lifecycle_hook(
            "LaunchHook",
            lifecycle_hook_name=LAUNCH_HOOK,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
            default_result=autoscaling.DefaultResult.ABANDON,
            heartbeat_timeout=LAUNCH_HOOK_TIMEOUT,
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["autoscaling:CompleteLifecycleAction"], resources=[self.group_arn]
            )
        )
        self._acknowledge_group_arn(self.role)

    @property
    def role(self) -> iam.Role:
        return self.nodes.role

    @property
    def group_arn(self) -> str:
        """This group only: the ARN with its fixed name (the UUID part is not known up front)."""
        return Stack.of(self).format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name=f"*:autoScalingGroupName/{self.group_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    @property
    def launch_template_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="ec2",
            resource="launch-template",
            resource_name=self.nodes.launch_template.launch_template_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def allow_agent_from(self, peer: ec2.IConnectable) -> None:
        self.security_group.connections.allow_from(
            peer, ec2.Port.tcp(AGENT_PORT), "agent (signalling, player) from the routers"
        )

    def allow_media_from(self, turn: ec2.IConnectable) -> None:
        """Relayed media: coturn sends from its relay ports to the instance's ICE ports."""
        self.security_group.connections.allow_from(
            turn, ec2.Port.udp_range(1024, 65535), "WebRTC media relayed by coturn"
        )

    def _acknowledge_group_arn(self, role: iam.Role) -> None:
        arn = finding_arn(
            self, "autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{self.group_name}"
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{arn}]",
            "The wildcard is the group's UUID, unknown before it exists; the fixed group "
            "name limits the statement to this one Auto Scaling group.",
        )

    def grant_pool_management(self, grantee: iam.Role) -> None:
        """What the pool manager does to this group and nothing else (regional_stack/pool/asg.py):
        resize, protect and terminate its instances, and fall back to another instance
        type with a new version of this group's launch template."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ManageThisGroup",
                actions=[
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:SetInstanceProtection",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                    "autoscaling:UpdateAutoScalingGroup",
                ],
                resources=[self.group_arn],
                # Fallbacks reorder the group's subnets; they never move it elsewhere.
                conditions={
                    "ForAllValues:StringEquals": {"autoscaling:VPCZoneIdentifiers": self.subnet_ids}
                },
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FallbackTemplateVersions",
                actions=["ec2:CreateLaunchTemplateVersion"],
                resources=[self.launch_template_arn],
            )
        )
        # UpdateAutoScalingGroup with a launch template checks that the caller could
        # launch it: only from this template, and only with its own parameters.
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LaunchFromThisTemplateOnly",
                actions=["ec2:RunInstances"],
                resources=["*"],
                conditions={
                    "ArnLike": {"ec2:LaunchTemplate": self.launch_template_arn},
                    "Bool": {"ec2:IsLaunchTemplateResource": "true"},
                },
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassTheGpuRole",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeOnly",
                actions=[
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeWarmPool",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:DescribeInstances",
                ],
                resources=["*"],
            )
        )
        self._acknowledge_group_arn(grantee)
        acknowledge(
            grantee,
            "AwsSolutions-IAM5[Resource::*]",
            "Describe actions support no resource-level permissions; ec2:RunInstances "
            "(checked by UpdateAutoScalingGroup) is bound by condition to this group's "
            "launch template and its own parameters.",
        )
