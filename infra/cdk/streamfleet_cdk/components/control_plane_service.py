"""The control plane: `streamfleet control-plane` on an Auto Scaling group behind the ALB."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from streamfleet_cdk.boot import NodeBoot, PrometheusScrape, Unit
from streamfleet_cdk.components.geoip import GeoIpRefresh
from streamfleet_cdk.components.network import Network, web_egress
from streamfleet_cdk.components.node_group import NodeGroup, log_group
from streamfleet_cdk.components.public_alb import PublicAlb
from streamfleet_cdk.config import CONTROL_PLANE_PORT, TURN_PORT, DeploymentConfig
from streamfleet_cdk.nag import acknowledge

METRICS_NAMESPACE = "Streamfleet"
METRICS_JOB = "streamfleet-control-plane"
METRICS_PATH = "/metrics"


def regions_setting(config: DeploymentConfig) -> str:
    """STREAMFLEET_REGIONS: JSON list of {name, geography, lat, lon, router_url, turn_uris,
    private_cidrs}; an agent's private IP must lie in its region's VPC."""
    return json.dumps(
        [
            {
                "name": r.name,
                "geography": r.geography.value,
                "lat": r.lat,
                "lon": r.lon,
                "router_url": f"https://{config.dns.router(r.name)}",
                "turn_uris": [
                    f"turn:{config.dns.turn(r.name)}:{TURN_PORT}?transport=udp",
                    f"turn:{config.dns.turn(r.name)}:{TURN_PORT}?transport=tcp",
                ],
                "private_cidrs": [r.vpc_cidr],
            }
            for r in config.regions
        ],
        separators=(",", ":"),
    )


class ControlPlaneService(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        network: Network,
        alb: PublicAlb,
        bundle: s3_assets.Asset,
        log_retention: logs.RetentionDays,
        redis_cluster: bool,
        secrets: Mapping[str, secretsmanager.ISecret],
    ) -> None:
        super().__init__(scope, id)
        cp = config.control_plane
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="control plane instances: HTTP from the ALB only",
            allow_all_outbound=False,
        )
        web_egress(self.security_group)
        static_env = {
            "STREAMFLEET_HTTP_HOST": "0.0.0.0",
            "STREAMFLEET_HTTP_PORT": str(CONTROL_PLANE_PORT),
            "STREAMFLEET_REDIS_CLUSTER": "true" if redis_cluster else "false",
            "STREAMFLEET_TOKEN_SIGNING_KID": cp.token_signing_kid,
            "STREAMFLEET_REGIONS": regions_setting(config),
            # The ALB's nodes live in this VPC: their X-Forwarded-For names the client,
            # which per-client rate limits and geo-IP placement need.
            "STREAMFLEET_TRUSTED_PROXIES": json.dumps([cp.vpc_cidr]),
            # Public certificates (not secrets): the cloud's signature on each agent's
            # instance identity document is checked with its region's.
            "STREAMFLEET_AGENT_IDENTITY_KEYS": json.dumps(
                {r.name: r.identity_certificate for r in config.regions if r.identity_certificate},
                separators=(",", ":"),
            ),
        }
        if cp.geoip_db:
            static_env["STREAMFLEET_GEOIP_DB"] = cp.geoip_db
        self.geoip = (
            GeoIpRefresh(self, "GeoIp", geoip=cp.geoip, region=cp.region) if cp.geoip else None
        )
        if self.geoip is not None:
            static_env.update(self.geoip.env)
        if cp.cors_origins:
            static_env["STREAMFLEET_CORS_ORIGINS"] = json.dumps(list(cp.cors_origins))
        self.unit = Unit(
            name="streamfleet-control-plane",
            description="streamfleet control plane",
            exec_start="/usr/local/bin/streamfleet control-plane",
            static_env=static_env,
            secret_env={var: secret.secret_name for var, secret in secrets.items()},
        )
        self.log_group = log_group(self, "Logs", log_retention)
        boot = NodeBoot(
            role="control-plane",
            region=cp.region,
            bundle=bundle,
            log_group=self.log_group,
            prometheus=PrometheusScrape(
                job=METRICS_JOB,
                target=f"127.0.0.1:{CONTROL_PLANE_PORT}",
                metrics_path=METRICS_PATH,
                namespace=METRICS_NAMESPACE,
                metric_names=(cp.queue_depth_metric,),
            ),
        ).add_unit(self.unit)
        if self.geoip is not None:
            self.geoip.install(boot)
        self.nodes = NodeGroup(
            self,
            "Nodes",
            role_description="streamfleet control-plane instances",
            vpc=network.vpc,
            subnets=network.private_selection,
            security_group=self.security_group,
            instance_type=cp.service.instance_type,
            ami=config.base_ami,
            region=cp.region,
            bundle=bundle,
            log_group=self.log_group,
            boot=boot,
            min_size=cp.service.min_size,
            max_size=cp.service.max_size,
            elb_health_check=True,
        )
        self.nodes.group.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        # An agent's registration is checked against what EC2 records now
        # (control_plane/cloud.py), in every region of the deployment.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ec2:DescribeInstances"], resources=["*"])
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "DescribeInstances has no resource-level permissions (AWS's service "
            "authorization reference): it is read-only and names only this account's instances.",
        )
        self.target_group = alb.https.add_targets(
            "ControlPlane",
            port=CONTROL_PLANE_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.nodes.group],
            health_check=elbv2.HealthCheck(
                path=cp.health_check_path,
                healthy_http_codes="200",
                interval=Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            deregistration_delay=Duration.seconds(30),
        )
        # Metrics are scraped on the instance; the internet never sees them.
        alb.https.add_action(
            "HideMetrics",
            priority=10,
            conditions=[elbv2.ListenerCondition.path_patterns([METRICS_PATH, f"{METRICS_PATH}/*"])],
            action=elbv2.ListenerAction.fixed_response(
                404, content_type="application/json", message_body='{"error":"not_found"}'
            ),
        )

    @property
    def role(self) -> iam.Role:
        return self.nodes.role
