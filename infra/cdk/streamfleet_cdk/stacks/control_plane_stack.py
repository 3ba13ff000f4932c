"""The control plane (one region): VPC, Redis, the service behind an ALB with WAF, alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from streamfleet_cdk.components import network as net
from streamfleet_cdk.components.alarms import FIVE_MINUTES, AlarmTopic
from streamfleet_cdk.components.control_plane_service import (
    METRICS_JOB,
    METRICS_NAMESPACE,
    ControlPlaneService,
)
from streamfleet_cdk.components.node_group import wheelhouse_bundle
from streamfleet_cdk.components.public_alb import PublicAlb, certificate, hosted_zone
from streamfleet_cdk.components.redis import RedisStore
from streamfleet_cdk.components.secrets import imported
from streamfleet_cdk.components.web_acl import RateRule, WebAcl
from streamfleet_cdk.config import DeploymentConfig, SecretNames
from streamfleet_cdk.retention import retention

AGENT_API_PREFIX = "/v1/agents/"


class ControlPlaneStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: DeploymentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        cp = config.control_plane
        names = SecretNames(config.name)
        log_retention = retention(config.log_retention_days)

        network = net.Network(
            self,
            "Network",
            cidr=cp.vpc_cidr,
            availability_zones=cp.availability_zones,
            nat_gateways=cp.nat_gateways,
            log_retention=log_retention,
            interface_endpoints=dict(net.BASE_ENDPOINTS) if config.interface_endpoints else {},
        )
        zone = hosted_zone(self, config.dns)
        web_acl = WebAcl(
            self,
            "Waf",
            name=f"{config.name}-control-plane",
            rate_rules=[
                RateRule("PerIp", config.waf.rate_limit, exclude_path_prefix=AGENT_API_PREFIX),
                # A region's agents all come from its NAT addresses.
                RateRule("AgentsPerIp", config.waf.agent_rate_limit, path_prefix=AGENT_API_PREFIX),
            ],
            log_retention=log_retention,
        )
        self.alb = PublicAlb(
            self,
            "Alb",
            vpc=network.vpc,
            domain_name=config.dns.control_plane,
            certificate=certificate(self, config.dns, config.dns.control_plane, zone),
            zone=zone,
            web_acl=web_acl,
            shield_advanced=config.shield_advanced,
            # Session events are server-sent events: keep idle streams open a while.
            idle_timeout=Duration.seconds(300),
        )
        self.redis = RedisStore(
            self,
            "Redis",
            vpc=network.vpc,
            config=cp.redis,
            names=names,
            log_retention=log_retention,
        )
        # Read by name, like every secret a node reads (its replica, elsewhere).
        secrets = {
            "STREAMFLEET_REDIS_URL": imported(self, "RedisUrl", names.redis_url),
            "STREAMFLEET_TOKEN_KEYS": imported(self, "TokenKeys", names.token_keys),
            "STREAMFLEET_TURN_SECRET": imported(self, "TurnSecret", names.turn_secret),
            "STREAMFLEET_AGENT_SECRETS": imported(self, "AgentSecrets", names.agent_secrets),
            "STREAMFLEET_ADMIN_TOKEN": imported(self, "AdminToken", names.admin_token),
            "STREAMFLEET_AGENT_TOKEN_KEY": imported(self, "AgentTokenKey", names.agent_token_key),
        }
        uncertified = [r.name for r in config.regions if r.identity_certificate is None]
        if uncertified:
            # Every registration from such a region would be refused: fail `cdk synth`,
            # unless the templates are only previewed (`-c preview=true`, `make synth`).
            message = (
                "no identity_certificate for " + ", ".join(uncertified) + ": the control plane "
                "checks each agent's instance identity document with AWS's RSA-2048 certificate "
                "of its region; copy it from https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/"
                "regions-certs.html into the region's identity_certificate (docs/deploy.md)"
            )
            if str(self.node.try_get_context("preview")).lower() == "true":
                Annotations.of(self).add_warning_v2(
                    "streamfleet:identity-certificate", message + "; a preview, not deployable"
                )
            else:
                Annotations.of(self).add_error(message)
        self.service = ControlPlaneService(
            self,
            "Service",
            config=config,
            network=network,
            alb=self.alb,
            bundle=wheelhouse_bundle(self),
            log_retention=log_retention,
            redis_cluster=cp.redis.cluster_mode,
            secrets=secrets,
        )
        self.redis.allow_from(self.service.security_group)
        # Instances start once Redis and its URL secret exist, not minutes before.
        self.service.nodes.group.node.add_dependency(self.redis.url_secret)
        for secret in secrets.values():
            secret.grant_read(self.service.role)
        if self.service.geoip is not None:
            self.service.geoip.grant_read(self.service.role)

        alarms = AlarmTopic(self, "Alarms", email=config.alarm_email)
        alarms.load_balancer_alarms(
            alb=self.alb.alb, targets=self.service.target_group, service="the control plane"
        )
        alarms.alarm(
            "QueueDepth",
            metric=cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=cp.queue_depth_metric,
                dimensions_map={"job": METRICS_JOB},
                statistic="Maximum",
                period=FIVE_MINUTES,
            ),
            threshold=cp.queue_depth_alarm_threshold,
            evaluation_periods=2,
            description="users are queueing: every region they accept is full",
        )

        CfnOutput(self, "ControlPlaneUrl", value=self.alb.url)
        CfnOutput(
            self,
            "AlbDnsName",
            value=self.alb.alb.load_balancer_dns_name,
            description=f"point {config.dns.control_plane} here when DNS is not managed by the app",
        )
        CfnOutput(self, "RedisEndpoint", value=self.redis.host)
