"""ElastiCache for Redis: the control plane's source of truth.

Multi-AZ with automatic failover, TLS in transit (required), encryption at rest
with a customer key, AUTH token from Secrets Manager, slow log to CloudWatch.
`url_secret` holds the `rediss://` URL with the token (STREAMFLEET_REDIS_URL),
composed by CloudFormation so the token never appears in a template.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from streamfleet_cdk.config import Redis, SecretNames
from streamfleet_cdk.nag import acknowledge


class RedisStore(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        config: Redis,
        names: SecretNames,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="ElastiCache Redis: the control plane only",
            allow_all_outbound=False,
        )
        subnets = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description="private subnets of the control plane",
            subnet_ids=vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            ).subnet_ids,
        )
        # Redis AUTH allows printable ASCII without @, " and /; alphanumeric is
        # also safe inside the URL below without escaping.
        self.auth_secret = secretsmanager.Secret(
            self,
            "AuthToken",
            secret_name=names.redis_auth,
            description="Redis AUTH token (ElastiCache, and the control plane via the URL secret)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        key = kms.Key(
            self, "Key", enable_key_rotation=True, description="ElastiCache Redis at rest"
        )
        slow_log = logs.LogGroup(
            self, "SlowLog", retention=log_retention, removal_policy=RemovalPolicy.RETAIN
        )
        sizing: dict[str, object]
        if config.cluster_mode:
            sizing = {
                "num_node_groups": config.shards,
                "replicas_per_node_group": config.replicas_per_shard,
                "cache_parameter_group_name": "default.redis7.cluster.on",
            }
        else:
            sizing = {
                "num_cache_clusters": 1 + config.replicas_per_shard,
                "cache_parameter_group_name": "default.redis7",
            }
        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_description="streamfleet control plane state",
            engine="redis",
            engine_version=config.engine_version,
            cache_node_type=config.node_type,
            port=config.port,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[self.security_group.security_group_id],
            multi_az_enabled=True,
            automatic_failover_enabled=True,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            kms_key_id=key.key_arn,
            auth_token=self.auth_secret.secret_value.unsafe_unwrap(),
            snapshot_retention_limit=config.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            log_delivery_configurations=[
                elasticache.CfnReplicationGroup.LogDeliveryConfigurationRequestProperty(
                    destination_type="cloudwatch-logs",
                    destination_details=elasticache.CfnReplicationGroup.DestinationDetailsProperty(
                        cloud_watch_logs_details=elasticache.CfnReplicationGroup.CloudWatchLogsDestinationDetailsProperty(
                            log_group=slow_log.log_group_name
                        )
                    ),
                    log_format="json",
                    log_type="slow-log",
                )
            ],
            **sizing,  # type: ignore[arg-type]
        )
        self.replication_group.add_resource_dependency(subnets)
        if config.cluster_mode:
            host = self.replication_group.attr_configuration_end_point_address
        else:
            host = self.replication_group.attr_primary_end_point_address
        self.host = host
        token = self.auth_secret.secret_value.unsafe_unwrap()  # a dynamic reference, not the value
        url = f"rediss://:{token}@{host}:{config.port}/0"
        self.url_secret = secretsmanager.Secret(
            self,
            "Url",
            secret_name=names.redis_url,
            description="STREAMFLEET_REDIS_URL with the AUTH token (control plane only)",
            secret_string_value=SecretValue.unsafe_plain_text(url),
            removal_policy=RemovalPolicy.RETAIN,
        )
        for secret in (self.auth_secret, self.url_secret):
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "The Redis AUTH token is rotated with ElastiCache's ROTATE/SET auth-token "
                "strategy and a control-plane restart (docs/deploy.md), not by a Lambda.",
            )

    def allow_from(self, peer: ec2.IConnectable) -> None:
        self.security_group.connections.allow_from(
            peer, ec2.Port.tcp(self.config.port), "control plane to Redis"
        )
