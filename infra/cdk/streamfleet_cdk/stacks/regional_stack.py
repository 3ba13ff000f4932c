"""One region's data plane: router behind an ALB with WAF, GPU group, coturn, pool manager."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Fn, Stack
from constructs import Construct

from streamfleet_cdk.components import network as net
from streamfleet_cdk.components.alarms import AlarmTopic
from streamfleet_cdk.components.gpu_fleet import GpuFleet
from streamfleet_cdk.components.gpu_image import GpuImageBuilder
from streamfleet_cdk.components.node_group import wheelhouse_bundle
from streamfleet_cdk.components.pool_manager import PoolManager
from streamfleet_cdk.components.public_alb import PublicAlb, certificate, hosted_zone
from streamfleet_cdk.components.router import Router
from streamfleet_cdk.components.secrets import imported
from streamfleet_cdk.components.turn import TurnServers
from streamfleet_cdk.components.web_acl import RateRule, WebAcl
from streamfleet_cdk.config import DeploymentConfig, RegionConfig, SecretNames
from streamfleet_cdk.retention import retention


def gpu_group_name(config: DeploymentConfig, region: str) -> str:
    return f"{config.name}-{region}-gpu"


class RegionalStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        region: RegionConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        names = SecretNames(config.name)
        log_retention = retention(config.log_retention_days)
        control_plane_url = f"https://{config.dns.control_plane}"
        endpoints = {**net.BASE_ENDPOINTS, **net.REGIONAL_ENDPOINTS}

        network = net.Network(
            self,
            "Network",
            cidr=region.vpc_cidr,
            availability_zones=region.availability_zones,
            nat_gateways=region.nat_gateways,
            log_retention=log_retention,
            interface_endpoints=endpoints if config.interface_endpoints else {},
        )
        zone = hosted_zone(self, config.dns)
        router_domain = config.dns.router(region.name)
        web_acl = WebAcl(
            self,
            "Waf",
            name=f"{config.name}-{region.name}",
            rate_rules=[RateRule("PerIp", config.waf.rate_limit)],
            log_retention=log_retention,
        )
        self.alb = PublicAlb(
            self,
            "Alb",
            vpc=network.vpc,
            domain_name=router_domain,
            certificate=certificate(self, config.dns, router_domain, zone),
            zone=zone,
            web_acl=web_acl,
            shield_advanced=config.shield_advanced,
            # Signalling WebSockets idle once media flows (the router allows 1 h).
            idle_timeout=Duration.seconds(3600),
        )
        bundle = wheelhouse_bundle(self)
        token_keys = imported(self, "TokenKeys", names.token_keys)
        turn_secret = imported(self, "TurnSecret", names.turn_secret)
        admin_token = imported(self, "AdminToken", names.admin_token)
        agent_secret = imported(self, "AgentSecret", names.agent_secret(region.name))

        # The GPU image: baked here by Image Builder when configured, else gpu_ami.
        self.gpu_image = (
            GpuImageBuilder(
                self, "GpuImage", name=config.name, image=config.gpu_image, network=network
            )
            if config.gpu_image is not None
            else None
        )
        self.gpu = GpuFleet(
            self,
            "Gpu",
            region=region,
            group_name=gpu_group_name(config, region.name),
            network=network,
            ami=config.gpu_ami,
            bundle=bundle,
            log_retention=log_retention,
            control_plane_url=control_plane_url,
            agent_secret=agent_secret,
            token_keys=token_keys,
            image_id=self.gpu_image.image_id if self.gpu_image else None,
        )
        self.router = Router(
            self,
            "Router",
            region=region,
            network=network,
            alb=self.alb,
            ami=config.base_ami,
            bundle=bundle,
            log_retention=log_retention,
            token_keys=token_keys,
        )
        self.turn = TurnServers(
            self,
            "Turn",
            region=region,
            network=network,
            ami=config.base_ami,
            bundle=bundle,
            log_retention=log_retention,
            turn_secret=turn_secret,
            domain_name=config.dns.turn(region.name),
            zone=zone,
        )
        self.pool_manager = PoolManager(
            self,
            "PoolManager",
            region=region,
            network=network,
            gpu=self.gpu,
            ami=config.base_ami,
            bundle=bundle,
            log_retention=log_retention,
            control_plane_url=control_plane_url,
            admin_token=admin_token,
        )

        # Who may talk to the GPU instances: routers on the agent port, coturn for media.
        self.gpu.allow_agent_from(self.router.security_group)
        self.gpu.allow_media_from(self.turn.security_group)
        self.turn.allow_relay_from(self.gpu.security_group)

        # Who may read which secret.
        token_keys.grant_read(self.router.role)
        token_keys.grant_read(self.gpu.role)
        agent_secret.grant_read(self.gpu.role)
        for role in self.turn.roles:
            turn_secret.grant_read(role)
        admin_token.grant_read(self.pool_manager.role)
        self.gpu.grant_pool_management(self.pool_manager.role)

        alarms = AlarmTopic(self, "Alarms", email=config.alarm_email)
        alarms.load_balancer_alarms(
            alb=self.alb.alb,
            targets=self.router.target_group,
            service=f"the router of {region.name}",
        )

        # What the control plane's STREAMFLEET_REGIONS entry of this region holds.
        CfnOutput(self, "RouterUrl", value=self.alb.url)
        CfnOutput(
            self,
            "RouterAlbDnsName",
            value=self.alb.alb.load_balancer_dns_name,
            description=f"point {router_domain} here when DNS is not managed by the app",
        )
        CfnOutput(
            self,
            "TurnAddresses",
            value=Fn.join(",", [a.attr_public_ip for a in self.turn.addresses]),
            description=f"A records of {config.dns.turn(region.name)}",
        )
        CfnOutput(self, "TurnUris", value=Fn.join(",", self.turn.turn_uris))
        CfnOutput(self, "GpuAutoScalingGroup", value=self.gpu.group_name)
        if self.gpu_image is not None:
            CfnOutput(self, "GpuImageId", value=self.gpu_image.image_id)
            CfnOutput(self, "GpuImagePipeline", value=self.gpu_image.pipeline.attr_arn)
