"""The region's pool manager: `streamfleet pool-manager --region R` on a group of one."""

from __future__ import annotations

import json

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from streamfleet_cdk.boot import NodeBoot, Unit
from streamfleet_cdk.components.gpu_fleet import GpuFleet
from streamfleet_cdk.components.network import Network, web_egress
from streamfleet_cdk.components.node_group import NodeGroup, log_group
from streamfleet_cdk.config import AmiSource, RegionConfig


class PoolManager(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        region: RegionConfig,
        network: Network,
        gpu: GpuFleet,
        ami: AmiSource,
        bundle: s3_assets.Asset,
        log_retention: logs.RetentionDays,
        control_plane_url: str,
        admin_token: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="pool manager: no inbound, AWS APIs and the control plane out",
            allow_all_outbound=False,
        )
        web_egress(self.security_group)
        settings = {
            f"STREAMFLEET_POOL_{k.upper()}": v for k, v in region.gpu.pool_manager_settings.items()
        }
        settings |= {
            "STREAMFLEET_POOL_CONTROL_PLANE_URL": control_plane_url,
            "STREAMFLEET_POOL_REGION": region.name,
            "STREAMFLEET_POOL_ASG_NAME": gpu.group_name,
            "STREAMFLEET_POOL_PRIMARY_INSTANCE_TYPE": region.gpu.primary_type,
            "STREAMFLEET_POOL_FALLBACK_INSTANCE_TYPES": json.dumps(list(region.gpu.fallback_types)),
            "STREAMFLEET_POOL_MIN_SIZE": str(region.gpu.min_size),
            "STREAMFLEET_POOL_MAX_SIZE": str(region.gpu.max_size),
        }
        self.unit = Unit(
            name="streamfleet-pool-manager",
            description=f"streamfleet pool manager of {region.name}",
            exec_start=f"/usr/local/bin/streamfleet pool-manager --region {region.name}",
            static_env=settings,
            secret_env={"STREAMFLEET_POOL_ADMIN_TOKEN": admin_token.secret_name},
        )
        self.log_group = log_group(self, "Logs", log_retention)
        boot = NodeBoot(
            role="pool-manager", region=region.name, bundle=bundle, log_group=self.log_group
        ).add_unit(self.unit)
        self.nodes = NodeGroup(
            self,
            "Nodes",
            role_description=f"streamfleet pool manager of {region.name}",
            vpc=network.vpc,
            subnets=network.private_selection,
            security_group=self.security_group,
            instance_type=region.pool_manager_instance_type,
            ami=ami,
            region=region.name,
            bundle=bundle,
            log_group=self.log_group,
            boot=boot,
            min_size=1,
            max_size=1,
            rolling_update=False,
        )

    @property
    def role(self) -> iam.Role:
        return self.nodes.role
