"""Control-plane stack: Redis, the service behind ALB + WAF, secrets, alarms; optional features."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Capture, Match, Template
from streamfleet_cdk.app_builder import build_app
from streamfleet_cdk.config import DeploymentConfig

from tests.integration.cdk.conftest import TEST_IDENTITY_KEY, Synthesized
from tests.integration.cdk.helpers import (
    flatten,
    of_type,
    one,
    role_id,
    secrets_readable_by_role,
)


@pytest.fixture
def template(default_app: Synthesized) -> Template:
    return default_app.template(default_app.built.control_plane)


def test_redis_is_encrypted_multi_az_with_failover_and_auth(template: Template) -> None:
    auth = Capture()
    security_groups = Capture()
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "Engine": "redis",
            "MultiAZEnabled": True,
            "AutomaticFailoverEnabled": True,
            "NumCacheClusters": 2,
            "AtRestEncryptionEnabled": True,
            "KmsKeyId": Match.any_value(),
            "TransitEncryptionEnabled": True,
            "TransitEncryptionMode": "required",
            "AuthToken": auth,
            "Port": 6380,
            "SecurityGroupIds": security_groups,
        },
    )
    auth_secret, _ = one(
        template, "AWS::SecretsManager::Secret", {"Name": "streamfleet/redis-auth"}
    )
    # A dynamic reference resolved by CloudFormation: the token is in no template.
    assert flatten(auth.as_object()) == (
        "{{resolve:secretsmanager:${" + auth_secret + "}:SecretString:::}}"
    )
    (redis_sg,) = [g["Fn::GetAtt"][0] for g in security_groups.as_array()]
    service_sg, _ = one(
        template,
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": Match.string_like_regexp("^control plane instances")},
    )
    rules = [
        p
        for p in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if p["GroupId"] == {"Fn::GetAtt": [redis_sg, "GroupId"]}
    ]
    assert [
        (r["SourceSecurityGroupId"]["Fn::GetAtt"][0], r["FromPort"], r["ToPort"]) for r in rules
    ] == [(service_sg, 6380, 6380)]
    assert "SecurityGroupIngress" not in template.to_json()["Resources"][redis_sg]["Properties"]


def test_redis_url_secret_is_composed_by_cloudformation(template: Template) -> None:
    _, url = one(template, "AWS::SecretsManager::Secret", {"Name": "streamfleet/redis-url"})
    auth_secret, _ = one(
        template, "AWS::SecretsManager::Secret", {"Name": "streamfleet/redis-auth"}
    )
    group, _ = one(template, "AWS::ElastiCache::ReplicationGroup", {"Engine": "redis"})
    assert flatten(url["SecretString"]) == (
        "rediss://:{{resolve:secretsmanager:${" + auth_secret + "}:SecretString:::}}"
        "@${" + group + ".PrimaryEndPoint.Address}:6380/0"
    )


def test_service_runs_in_private_subnets_behind_the_alb(template: Template) -> None:
    subnets = Capture()
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {"VPCZoneIdentifier": subnets, "TargetGroupARNs": [Match.any_value()], "MinSize": "2"},
    )
    resources = template.to_json()["Resources"]
    assert not any(
        resources[s["Ref"]]["Properties"]["MapPublicIpOnLaunch"] for s in subnets.as_array()
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"Port": 8080, "Protocol": "HTTP", "HealthCheckPath": "/healthz"},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )
    # Prometheus metrics are scraped on the instance, never served to the internet.
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {
            "Conditions": [
                Match.object_like({"PathPatternConfig": {"Values": ["/metrics", "/metrics/*"]}})
            ],
            "Actions": [Match.object_like({"Type": "fixed-response"})],
        },
    )


def test_waf_exempts_agents_from_the_client_rate_limit_only(template: Template) -> None:
    not_agents = Match.object_like(
        {
            "Statement": {
                "RateBasedStatement": Match.object_like(
                    {
                        "Limit": 1000,
                        "ScopeDownStatement": {
                            "NotStatement": {
                                "Statement": Match.object_like(
                                    {
                                        "ByteMatchStatement": Match.object_like(
                                            {"SearchString": "/v1/agents/"}
                                        )
                                    }
                                )
                            }
                        },
                    }
                )
            }
        }
    )
    agents = Match.object_like(
        {
            "Statement": {
                "RateBasedStatement": Match.object_like(
                    {
                        "Limit": 100000,
                        "ScopeDownStatement": Match.object_like(
                            {
                                "ByteMatchStatement": Match.object_like(
                                    {"SearchString": "/v1/agents/"}
                                )
                            }
                        ),
                    }
                )
            }
        }
    )
    template.has_resource_properties(
        "AWS::WAFv2::WebACL", {"Rules": Match.array_with([not_agents, agents])}
    )


def test_secrets_are_granted_to_the_service_only(template: Template) -> None:
    service = role_id(template, "control-plane instances")
    assert secrets_readable_by_role(template) == {
        service: {
            "streamfleet/redis-url",
            "streamfleet/token-keys",
            "streamfleet/turn-secret",
            "streamfleet/agent-secrets",
            "streamfleet/admin-token",
            "streamfleet/agent-token-key",
        }
    }


def test_the_service_may_ask_ec2_about_instances_and_nothing_more(template: Template) -> None:
    """Registration checks an agent against EC2 (control_plane/cloud.py): read-only."""
    service = role_id(template, "control-plane instances")
    actions: set[str] = set()
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": service} not in policy["Roles"]:
            continue
        for statement in policy["PolicyDocument"]["Statement"]:
            found = statement["Action"]
            for action in [found] if isinstance(found, str) else found:
                if action.startswith("ec2:"):
                    actions.add(action)
    assert actions == {"ec2:DescribeInstances"}


def test_a_region_without_an_identity_certificate_fails_the_synthesis(
    tmp_path: Path, wheelhouse: Path
) -> None:
    """Its agents could never register: `cdk synth` stops with an error naming the region."""
    default = DeploymentConfig()
    certified_one = default.region("eu-west-1").model_copy(
        update={"identity_certificate": TEST_IDENTITY_KEY}
    )
    config = DeploymentConfig(regions=(certified_one, default.region("us-east-1")))
    built = build_app(config, outdir=str(tmp_path), context={"wheelhouse": str(wheelhouse)})
    with pytest.raises(RuntimeError, match="ValidationFailed") as failed:
        built.app.synth()
    message = str(failed.value)
    assert "no identity_certificate for us-east-1:" in message
    assert "eu-west-1" not in message
    assert "regions-certs.html" in message
    # A preview (`make synth`) still writes the templates, with the finding as a warning.
    preview = build_app(
        config,
        outdir=str(tmp_path / "preview"),
        context={"wheelhouse": str(wheelhouse), "preview": "true"},
    )
    preview.app.synth()
    (warning,) = Annotations.from_stack(preview.control_plane).find_warning("*", Match.any_value())
    assert "no identity_certificate for us-east-1:" in str(warning.entry.data)


def test_alarms_for_5xx_queue_depth_and_unhealthy_hosts(template: Template) -> None:
    topic = Capture()
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "Streamfleet",
            "MetricName": "streamfleet_queue_depth",
            "Statistic": "Maximum",
            "Threshold": 50,
            "AlarmActions": [{"Ref": topic}],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "UnHealthyHostCount", "AlarmActions": [{"Ref": topic.as_string()}]},
    )
    five_xx = {
        metric["MetricStat"]["Metric"]["MetricName"]
        for alarm in of_type(template, "AWS::CloudWatch::Alarm").values()
        for metric in alarm.get("Metrics", [])
        if "MetricStat" in metric
    }
    assert five_xx == {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"}
    (topic_props,) = [
        p for k, p in of_type(template, "AWS::SNS::Topic").items() if k == topic.as_string()
    ]
    assert "KmsMasterKeyId" in topic_props


def test_log_groups_have_retention(template: Template) -> None:
    groups = of_type(template, "AWS::Logs::LogGroup")
    assert len(groups) >= 4  # service, Redis slow log, flow logs, WAF
    assert {p["RetentionInDays"] for p in groups.values()} == {30}


def test_nothing_here_is_shield_protected_by_default(template: Template) -> None:
    template.resource_count_is("AWS::Shield::Protection", 0)


# -- optional features: the variant app (Shield, Redis cluster mode, certificate ARNs) --


def test_shield_advanced_protects_every_alb(variant_app: Synthesized) -> None:
    for stack in [variant_app.built.control_plane, *variant_app.built.regions.values()]:
        template = variant_app.template(stack)
        (balancer,) = of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
        template.has_resource_properties(
            "AWS::Shield::Protection",
            {
                "ResourceArn": {"Ref": balancer},
                "ApplicationLayerAutomaticResponseConfiguration": {
                    "Action": {"Count": {}},
                    "Status": "ENABLED",
                },
            },
        )


def test_redis_cluster_mode(variant_app: Synthesized) -> None:
    template = variant_app.template(variant_app.built.control_plane)
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "NumNodeGroups": 3,
            "ReplicasPerNodeGroup": 1,
            "CacheParameterGroupName": "default.redis7.cluster.on",
            "MultiAZEnabled": True,
            "AutomaticFailoverEnabled": True,
        },
    )
    _, url = one(template, "AWS::SecretsManager::Secret", {"Name": "streamfleet/redis-url"})
    assert ".ConfigurationEndPoint.Address}:6380/0" in flatten(url["SecretString"])
    user_data = [
        flatten(p["LaunchTemplateData"]["UserData"])
        for p in of_type(template, "AWS::EC2::LaunchTemplate").values()
    ]
    assert ["STREAMFLEET_REDIS_CLUSTER='true'" in text for text in user_data] == [True]


def test_certificates_from_arns_without_a_hosted_zone(variant_app: Synthesized) -> None:
    expected = {
        variant_app.built.control_plane: "arn:aws:acm:eu-central-1:123456789012:certificate/cp",
        variant_app.built.regions["us-west-2"]: "arn:aws:acm:us-west-2:123456789012:certificate/r",
    }
    for stack, arn in expected.items():
        template = variant_app.template(stack)
        template.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::Listener",
            {"Port": 443, "Certificates": [{"CertificateArn": arn}]},
        )
        template.resource_count_is("AWS::CertificateManager::Certificate", 0)
        template.resource_count_is("AWS::Route53::RecordSet", 0)
        template.resource_count_is("AWS::SNS::Subscription", 1)
        endpoints = [
            p
            for p in of_type(template, "AWS::EC2::VPCEndpoint").values()
            if p.get("VpcEndpointType") == "Interface"
        ]
        assert endpoints == []


def test_agent_secrets_reach_only_their_regions(default_app: Synthesized) -> None:
    template = default_app.template(default_app.built.secrets)
    template.resource_count_is("AWS::IAM::Policy", 0)
    for region in ("eu-west-1", "us-east-1", "us-west-2"):
        template.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {"Name": f"streamfleet/agent-secret/{region}", "ReplicaRegions": [{"Region": region}]},
        )
    _, home = one(
        template, "AWS::SecretsManager::Secret", {"Name": "streamfleet/agent-secret/eu-central-1"}
    )
    assert "ReplicaRegions" not in home
    for shared in ("token-keys", "turn-secret", "admin-token"):
        template.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {
                "Name": f"streamfleet/{shared}",
                "ReplicaRegions": [
                    {"Region": "eu-west-1"},
                    {"Region": "us-east-1"},
                    {"Region": "us-west-2"},
                ],
            },
        )
    _, composed = one(
        template, "AWS::SecretsManager::Secret", {"Name": "streamfleet/agent-secrets"}
    )
    assert "ReplicaRegions" not in composed
    text = flatten(composed["SecretString"])
    assert text.count("{{resolve:secretsmanager:") == 4


def test_token_keys_have_the_contract_shape(default_app: Synthesized) -> None:
    template = default_app.template(default_app.built.secrets)
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": "streamfleet/token-keys",
            # {"k1": "<64 alphanumerics>"}: kid -> unpadded base64url of 48 bytes.
            "GenerateSecretString": {
                "SecretStringTemplate": "{}",
                "GenerateStringKey": "k1",
                "PasswordLength": 64,
                "ExcludePunctuation": True,
                "IncludeSpace": False,
            },
        },
    )
    for props in of_type(template, "AWS::SecretsManager::Secret").values():
        assert "SecretString" not in props or "{{resolve:" in flatten(props["SecretString"])
