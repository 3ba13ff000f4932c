"""Regional stacks: GPU isolation, security groups, WAF, pool manager scope, secret readers."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from tests.integration.cdk.conftest import Synthesized
from tests.integration.cdk.helpers import (
    as_list,
    flatten,
    of_type,
    one,
    role_id,
    secrets_readable_by_role,
    statements_of,
)

REGIONS = ["eu-central-1", "eu-west-1", "us-east-1", "us-west-2"]


@pytest.fixture(params=REGIONS)
def region(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def template(default_app: Synthesized, region: str) -> Template:
    return default_app.template(default_app.built.regions[region])


def security_group(template: Template, description: str) -> str:
    logical_id, _ = one(
        template,
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": Match.string_like_regexp(description)},
    )
    return logical_id


def ingress_to(template: Template, group: str) -> list[dict[str, Any]]:
    return [
        p
        for p in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if p["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]


def gpu_launch_template(template: Template, region: str) -> tuple[str, Capture]:
    launch_template = Capture()
    subnets = Capture()
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "AutoScalingGroupName": f"streamfleet-{region}-gpu",
            "LaunchTemplate": {"LaunchTemplateId": {"Ref": launch_template}},
            "VPCZoneIdentifier": subnets,
        },
    )
    return launch_template.as_string(), subnets


def test_gpu_instances_get_no_public_address(template: Template, region: str) -> None:
    launch_template, subnets = gpu_launch_template(template, region)
    resources = template.to_json()["Resources"]
    data = resources[launch_template]["Properties"]["LaunchTemplateData"]
    assert [ni["AssociatePublicIpAddress"] for ni in data["NetworkInterfaces"]] == [False]
    routes = of_type(template, "AWS::EC2::Route")
    associations = of_type(template, "AWS::EC2::SubnetRouteTableAssociation")
    for subnet in subnets.as_array():
        subnet_id = subnet["Ref"]
        assert resources[subnet_id]["Properties"]["MapPublicIpOnLaunch"] is False
        (table,) = [a["RouteTableId"] for a in associations.values() if a["SubnetId"] == subnet]
        default_routes = [
            r
            for r in routes.values()
            if r["RouteTableId"] == table and r["DestinationCidrBlock"] == "0.0.0.0/0"
        ]
        # Out through a NAT gateway only: no route from the internet back in.
        assert [set(r) & {"NatGatewayId", "GatewayId"} for r in default_routes] == [
            {"NatGatewayId"}
        ]


def test_gpu_group_admits_only_routers_and_turn(template: Template, region: str) -> None:
    launch_template, _ = gpu_launch_template(template, region)
    gpu = security_group(template, "^GPU instances")
    router = security_group(template, "^regional routers")
    turn = security_group(template, "^coturn")
    data = template.to_json()["Resources"][launch_template]["Properties"]["LaunchTemplateData"]
    assert data["NetworkInterfaces"][0]["Groups"] == [{"Fn::GetAtt": [gpu, "GroupId"]}]
    assert "SecurityGroupIngress" not in template.to_json()["Resources"][gpu]["Properties"]
    rules = {
        (
            rule["SourceSecurityGroupId"]["Fn::GetAtt"][0],
            rule["IpProtocol"],
            rule["FromPort"],
            rule["ToPort"],
        )
        for rule in ingress_to(template, gpu)
    }
    assert rules == {(router, "tcp", 8700, 8700), (turn, "udp", 1024, 65535)}


def test_turn_is_open_on_3478_and_relays_only_from_gpu(template: Template) -> None:
    turn = security_group(template, "^coturn")
    gpu = security_group(template, "^GPU instances")
    inline = template.to_json()["Resources"][turn]["Properties"]["SecurityGroupIngress"]
    assert {(r["CidrIp"], r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in inline} == {
        ("0.0.0.0/0", "udp", 3478, 3478),
        ("0.0.0.0/0", "tcp", 3478, 3478),
    }
    relay = ingress_to(template, turn)
    assert [
        (r["SourceSecurityGroupId"]["Fn::GetAtt"][0], r["IpProtocol"], r["FromPort"], r["ToPort"])
        for r in relay
    ] == [(gpu, "udp", 49152, 65535)]


def test_turn_servers_have_stable_public_addresses(template: Template, region: str) -> None:
    records = Capture()
    template.has_resource_properties(
        "AWS::Route53::RecordSet",
        {"Name": f"turn.{region}.stream.example.com.", "Type": "A", "ResourceRecords": records},
    )
    resources = template.to_json()["Resources"]
    addresses = [flatten(r).strip("${}").split(".")[0] for r in records.as_array()]
    assert {resources[a]["Type"] for a in addresses} == {"AWS::EC2::EIP"}
    groups = template.find_resources(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "Properties": {
                "Tags": Match.array_with(
                    [{"Key": "streamfleet:role", "PropagateAtLaunch": True, "Value": "turn"}]
                )
            }
        },
    )
    assert len(groups) == len(addresses) == 2  # one server per availability zone
    boot_scripts = []
    for group in groups.values():
        props = group["Properties"]
        assert (props["MinSize"], props["MaxSize"]) == ("1", "1")
        (subnet,) = props["VPCZoneIdentifier"]
        assert resources[subnet["Ref"]]["Properties"]["MapPublicIpOnLaunch"] is True
        launch_template = resources[props["LaunchTemplate"]["LaunchTemplateId"]["Ref"]]
        boot_scripts.append(
            flatten(launch_template["Properties"]["LaunchTemplateData"]["UserData"])
        )
    # Each server's instance takes over its own address at boot.
    for address in addresses:
        takeover = f'--allocation-id "${{{address}.AllocationId}}"'
        assert sum(takeover in text for text in boot_scripts) == 1


def test_router_takes_http_from_its_alb_only(template: Template) -> None:
    router = security_group(template, "^regional routers")
    alb = security_group(template, "^internet-facing ALB")
    rules = ingress_to(template, router)
    assert [
        (r["SourceSecurityGroupId"]["Fn::GetAtt"][0], r["IpProtocol"], r["FromPort"]) for r in rules
    ] == [(alb, "tcp", 80)]


def test_router_launch_template_installs_nginx_lua_and_renders_the_repo_config(
    template: Template,
) -> None:
    launch_template = Capture()
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "LaunchTemplate": {"LaunchTemplateId": {"Ref": launch_template}},
            "TargetGroupARNs": [Match.any_value()],
        },
    )
    data = template.to_json()["Resources"][launch_template.as_string()]["Properties"]
    text = flatten(data["LaunchTemplateData"]["UserData"])
    assert "nginx libnginx-mod-http-lua" in text
    assert "streamfleet router-config" in text
    assert "systemctl disable --now nginx.service" in text


def test_router_sits_in_private_subnets_behind_an_internet_facing_alb(template: Template) -> None:
    lb_subnets = Capture()
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {"Scheme": "internet-facing", "Subnets": lb_subnets},
    )
    resources = template.to_json()["Resources"]
    assert all(
        resources[s["Ref"]]["Properties"]["MapPublicIpOnLaunch"] for s in lb_subnets.as_array()
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"Port": 80, "Protocol": "HTTP", "HealthCheckPath": "/healthz", "TargetType": "instance"},
    )


def test_gpu_group_has_a_warm_pool_and_a_launch_hook(template: Template, region: str) -> None:
    launch_template, _ = gpu_launch_template(template, region)
    group = Capture()
    template.has_resource_properties(
        "AWS::AutoScaling::WarmPool",
        {"AutoScalingGroupName": {"Ref": group}, "MinSize": 4, "PoolState": "Stopped"},
    )
    props = template.to_json()["Resources"][group.as_string()]["Properties"]
    assert props["AutoScalingGroupName"] == f"streamfleet-{region}-gpu"
    assert "MixedInstancesPolicy" not in props  # AWS refuses a warm pool with one
    template.has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "AutoScalingGroupName": {"Ref": group.as_string()},
            "LifecycleHookName": "streamfleet-launch",
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "DefaultResult": "ABANDON",
        },
    )
    data = template.to_json()["Resources"][launch_template]["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == "g4dn.2xlarge"


def test_waf_is_associated_with_every_alb(default_app: Synthesized) -> None:
    for stack in [default_app.built.control_plane, *default_app.built.regions.values()]:
        template = default_app.template(stack)
        acls = of_type(template, "AWS::WAFv2::WebACL")
        associated = {
            a["ResourceArn"]["Ref"]
            for a in of_type(template, "AWS::WAFv2::WebACLAssociation").values()
            if a["WebACLArn"]["Fn::GetAtt"][0] in acls
        }
        balancers = set(of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
        assert balancers and associated == balancers, stack.stack_name


def test_waf_has_managed_rules_and_a_rate_limit(template: Template) -> None:
    managed = [
        Match.object_like(
            {"Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": name}}}
        )
        for name in (
            "AWSManagedRulesAmazonIpReputationList",
            "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesKnownBadInputsRuleSet",
        )
    ]
    rate = Match.object_like(
        {
            "Action": {"Block": {}},
            "Statement": {"RateBasedStatement": {"AggregateKeyType": "IP", "Limit": 1000}},
        }
    )
    template.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "Rules": Match.array_with([*managed, rate]),
        },
    )
    template.has_resource_properties(
        "AWS::WAFv2::LoggingConfiguration",
        {"RedactedFields": Match.array_with([{"SingleHeader": {"Name": "authorization"}}])},
    )


def test_alb_serves_https_and_redirects_http(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "Certificates": [Match.any_value()]},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "DefaultActions": [
                Match.object_like(
                    {"Type": "redirect", "RedirectConfig": Match.object_like({"Port": "443"})}
                )
            ],
        },
    )


def test_pool_manager_may_manage_this_regions_gpu_group_only(
    template: Template, region: str
) -> None:
    launch_template, _ = gpu_launch_template(template, region)
    pool_manager = role_id(template, "pool manager of")
    gpu_role = role_id(template, "GPU instances of")
    statements = statements_of(template, pool_manager)
    assert not any(a.endswith("*") for s in statements for a in as_list(s["Action"])), (
        "no wildcard actions"
    )

    def mutating(statement: dict[str, Any]) -> bool:
        return any(
            a.startswith("autoscaling:") and not a.startswith("autoscaling:Describe")
            for a in as_list(statement["Action"])
        )

    groups = {flatten(r) for s in statements if mutating(s) for r in as_list(s["Resource"])}
    assert len(groups) == 1
    (group,) = groups
    assert group.startswith(f"arn:aws:autoscaling:{region}:")
    assert group.endswith(f":autoScalingGroup:*:autoScalingGroupName/streamfleet-{region}-gpu")

    by_sid = {s["Sid"]: s for s in statements if "Sid" in s}
    template_arn = flatten(by_sid["FallbackTemplateVersions"]["Resource"])
    assert template_arn.endswith(f":launch-template/${{{launch_template}}}")
    run = by_sid["LaunchFromThisTemplateOnly"]
    assert flatten(run["Condition"]["ArnLike"]["ec2:LaunchTemplate"]) == template_arn
    assert run["Condition"]["Bool"] == {"ec2:IsLaunchTemplateResource": "true"}
    assert by_sid["PassTheGpuRole"]["Resource"] == {"Fn::GetAtt": [gpu_role, "Arn"]}
    describe = as_list(by_sid["DescribeOnly"]["Action"])
    assert all(":Describe" in a for a in describe)

    # Nobody else in the region may change an Auto Scaling group, but the GPU
    # instances may complete their own launch hook.
    for role in of_type(template, "AWS::IAM::Role"):
        if role in (pool_manager, gpu_role):
            continue
        assert not any(mutating(s) for s in statements_of(template, role)), role
    gpu_actions = {
        a for s in statements_of(template, gpu_role) if mutating(s) for a in as_list(s["Action"])
    }
    assert gpu_actions == {"autoscaling:CompleteLifecycleAction"}


def test_secrets_are_readable_by_their_consumers_only(template: Template, region: str) -> None:
    roles = {
        "router": role_id(template, "routers of"),
        "gpu": role_id(template, "GPU instances of"),
        "turn0": role_id(template, "coturn 0 of"),
        "turn1": role_id(template, "coturn 1 of"),
        "pool": role_id(template, "pool manager of"),
    }
    expected = {
        roles["router"]: {"streamfleet/token-keys"},
        roles["gpu"]: {"streamfleet/token-keys", f"streamfleet/agent-secret/{region}"},
        roles["turn0"]: {"streamfleet/turn-secret"},
        roles["turn1"]: {"streamfleet/turn-secret"},
        roles["pool"]: {"streamfleet/admin-token"},
    }
    assert secrets_readable_by_role(template) == expected
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = set(as_list(statement["Action"]))
            if any(a.startswith("secretsmanager:") for a in actions):
                assert actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
                # The replica of this region, by name (suffix wildcard of Secrets Manager).
                assert all(
                    f":secretsmanager:{region}:" in flatten(r)
                    for r in as_list(statement["Resource"])
                )


def test_every_instance_requires_imdsv2_and_encrypts_its_disk(template: Template) -> None:
    launch_templates = of_type(template, "AWS::EC2::LaunchTemplate")
    assert len(launch_templates) == 5  # gpu, router, 2 x coturn, pool manager
    for data in (lt["LaunchTemplateData"] for lt in launch_templates.values()):
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["Monitoring"] == {"Enabled": True}
        assert [b["Ebs"]["Encrypted"] for b in data["BlockDeviceMappings"]] == [True]


def test_network_spans_the_configured_zones_with_endpoints(
    default_app: Synthesized, template: Template, region: str
) -> None:
    zones = {p["AvailabilityZone"] for p in of_type(template, "AWS::EC2::Subnet").values()}
    assert zones == set(default_app.config.region(region).availability_zones)
    gateways = [
        flatten(p["ServiceName"])
        for p in of_type(template, "AWS::EC2::VPCEndpoint").values()
        if p.get("VpcEndpointType") == "Gateway"
    ]
    assert gateways == ["com.amazonaws.${AWS::Region}.s3"]
    interface = [
        p["ServiceName"]
        for p in of_type(template, "AWS::EC2::VPCEndpoint").values()
        if p.get("VpcEndpointType") == "Interface"
    ]
    for service in ("secretsmanager", "autoscaling", "ec2", "logs", "ssm"):
        assert f"com.amazonaws.{region}.{service}" in interface
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})


def test_log_groups_have_retention_and_alarms_notify(template: Template) -> None:
    for props in of_type(template, "AWS::Logs::LogGroup").values():
        assert props["RetentionInDays"] == 30
    topic = Capture()
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "UnHealthyHostCount", "AlarmActions": [{"Ref": topic}]},
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Metrics": Match.array_with(
                [
                    Match.object_like(
                        {
                            "MetricStat": Match.object_like(
                                {
                                    "Metric": Match.object_like(
                                        {"MetricName": "HTTPCode_Target_5XX_Count"}
                                    )
                                }
                            )
                        }
                    )
                ]
            ),
            "AlarmActions": [{"Ref": topic.as_string()}],
        },
    )


def test_outputs_name_the_endpoints_the_control_plane_needs(
    template: Template, region: str
) -> None:
    outputs = template.to_json()["Outputs"]
    assert outputs["RouterUrl"]["Value"] == f"https://{region}.stream.example.com"
    assert {"TurnAddresses", "TurnUris", "RouterAlbDnsName", "GpuAutoScalingGroup"} <= set(outputs)
    turn_uris = flatten(outputs["TurnUris"]["Value"])
    assert turn_uris.count(":3478?transport=udp") == turn_uris.count(":3478?transport=tcp") == 2
