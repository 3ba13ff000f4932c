"""The regional router: nginx with the Lua module and the repository's router config.

The config is rendered at every start by `streamfleet router-config` (nginx_lua)
with this region's VPC as the only upstream range; `systemctl reload` fetches
the token keys again and reloads nginx without dropping live streams.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from streamfleet_cdk.boot import NodeBoot, Unit, script
from streamfleet_cdk.components.network import Network, web_egress
from streamfleet_cdk.components.node_group import NodeGroup, log_group
from streamfleet_cdk.components.public_alb import PublicAlb
from streamfleet_cdk.config import AGENT_PORT, ROUTER_PORT, AmiSource, RegionConfig

PREFIX = "/run/streamfleet/router"
PREPARE = "/usr/local/sbin/streamfleet-router-prepare"
HEALTH_CHECK_PATH = "/healthz"  # nginx_lua/router.conf.tmpl


class Router(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        region: RegionConfig,
        network: Network,
        alb: PublicAlb,
        ami: AmiSource,
        bundle: s3_assets.Asset,
        log_retention: logs.RetentionDays,
        token_keys: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="regional routers: HTTP from the ALB, to the GPU agents",
            allow_all_outbound=False,
        )
        web_egress(self.security_group)
        self.log_group = log_group(self, "Logs", log_retention)
        self.unit = Unit(
            name="streamfleet-router",
            description="streamfleet regional router (nginx + Lua)",
            # nginx's master binds port 80 and reads the key file; workers drop to nobody.
            user="root",
            prepare=PREPARE,
            exec_start=f"/usr/sbin/nginx -p {PREFIX} -c {PREFIX}/conf/nginx.conf",
            reload="/bin/kill -HUP $MAINPID",
        )
        boot = (
            NodeBoot(
                role="router",
                region=region.name,
                bundle=bundle,
                log_group=self.log_group,
                packages=("nginx", "libnginx-mod-http-lua"),
            )
            .add_file(
                PREPARE,
                script(
                    "router-prepare.sh",
                    token_keys=token_keys.secret_name,
                    region=region.name,
                    router_port=ROUTER_PORT,
                    region_cidr=region.vpc_cidr,
                    agent_port=AGENT_PORT,
                ),
            )
            # Debian starts its own nginx on port 80 at install; ours replaces it.
            .add_commands("systemctl disable --now nginx.service")
            .add_unit(self.unit)
        )
        self.nodes = NodeGroup(
            self,
            "Nodes",
            role_description=f"streamfleet routers of {region.name}",
            vpc=network.vpc,
            subnets=network.private_selection,
            security_group=self.security_group,
            instance_type=region.router.instance_type,
            ami=ami,
            region=region.name,
            bundle=bundle,
            log_group=self.log_group,
            boot=boot,
            min_size=region.router.min_size,
            max_size=region.router.max_size,
            elb_health_check=True,
        )
        self.nodes.group.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        self.target_group = alb.https.add_targets(
            "Router",
            port=ROUTER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.nodes.group],
            health_check=elbv2.HealthCheck(
                path=HEALTH_CHECK_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            # Signalling WebSockets of live sessions get time to move on.
            deregistration_delay=Duration.seconds(60),
        )

    @property
    def role(self) -> iam.Role:
        return self.nodes.role
