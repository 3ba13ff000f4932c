"""The GPU image recipe (EC2 Image Builder) and geo-IP on the control plane, as
synthesized with both options on; cdk-nag validates the app during synthesis."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from tests.integration.cdk.conftest import Synthesized, _synthesize, certified
from tests.integration.cdk.helpers import (
    as_list,
    flatten,
    of_type,
    one,
    secrets_readable_by_role,
)

from streamfleet_cdk.components.gpu_image_documents import (  # isort: skip
    agent_document,
    content_hash,
)
from streamfleet_cdk.config import DeploymentConfig, GeoIp, GpuImage  # isort: skip

REGION = "eu-west-1"
ARTIFACT = "s3://acme-builds/configurator/linux-1.4.zip"
LICENCE = "streamfleet/maxmind-licence"
SCHEDULE = "cron(0 4 ? * SUN *)"


def config(geoip: GeoIp) -> DeploymentConfig:
    default = certified(DeploymentConfig())
    return DeploymentConfig(
        account="123456789012",
        regions=(default.region(REGION),),
        gpu_image=GpuImage(
            version="1.4.0",
            unreal_artifact=ARTIFACT,
            schedule=SCHEDULE,
        ),
        control_plane=default.control_plane.model_copy(update={"geoip": geoip}),
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Iterator[Synthesized]:
    tmp = tmp_path_factory.mktemp("cdk-image")
    yield _synthesize(config(GeoIp(maxmind_secret=LICENCE)), tmp / "out", wheelhouse)


@pytest.fixture(scope="module")
def s3_geoip_app(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path
) -> Iterator[Synthesized]:
    tmp = tmp_path_factory.mktemp("cdk-geoip-s3")
    geoip = GeoIp(s3_uri="s3://acme-geo/GeoIP2-City.mmdb", refresh="daily")
    yield _synthesize(config(geoip), tmp / "out", wheelhouse)


@pytest.fixture
def regional(app: Synthesized) -> Template:
    return app.template(app.built.regions[REGION])


def component(template: Template, name_prefix: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    logical_id, props = one(
        template,
        "AWS::ImageBuilder::Component",
        {"Name": Match.string_like_regexp(f"^streamfleet-{name_prefix}-[0-9a-f]{{10}}$")},
    )
    return logical_id, props, json.loads(props["Data"])


def commands(document: dict[str, Any], phase: str) -> str:
    steps = next(p for p in document["phases"] if p["name"] == phase)["steps"]
    return "\n".join(
        c for s in steps if s["action"] == "ExecuteBash" for c in s["inputs"]["commands"]
    )


def test_recipe_is_update_then_driver_then_unreal_then_agent(regional: Template) -> None:
    ids = [component(regional, n)[0] for n in ("nvidia-driver", "unreal-app", "agent")]
    regional.has_resource_properties(
        "AWS::ImageBuilder::ImageRecipe",
        {
            "Version": "1.4.0",
            # Resolved by Image Builder at build time: rebuilds start from the newest base.
            "ParentImage": "ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
            "Components": [
                {"ComponentArn": Match.string_like_regexp(":aws:component/update-linux/x.x.x$")},
                *({"ComponentArn": {"Fn::GetAtt": [i, "Arn"]}} for i in ids),
            ],
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/sda1", "Ebs": Match.object_like({"Encrypted": True})}
            ],
        },
    )


def test_driver_component_installs_and_proves_the_gpu(regional: Template) -> None:
    _, props, doc = component(regional, "nvidia-driver")
    assert props["Platform"] == "Linux" and props["Version"] == "1.4.0"
    build = commands(doc, "build")
    assert "nvidia-driver-570-server" in build and "linux-modules-nvidia-570-server-aws" in build
    steps = next(p for p in doc["phases"] if p["name"] == "build")["steps"]
    assert steps[-1]["action"] == "Reboot"  # the module loads on the next boot
    assert "nvidia-smi" in commands(doc, "validate")
    assert "vulkaninfo" in commands(doc, "test")


def test_unreal_component_downloads_the_artifact(regional: Template) -> None:
    _, _, doc = component(regional, "unreal-app")
    build = next(p for p in doc["phases"] if p["name"] == "build")["steps"]
    (download,) = [s for s in build if s["action"] == "S3Download"]
    assert download["inputs"][0]["source"] == ARTIFACT
    assert "unzip -q" in commands(doc, "build")


def test_agent_component_installs_offline_from_the_hashed_wheelhouse(regional: Template) -> None:
    _, props, _ = component(regional, "agent")
    data = flatten(props["Data"])  # the asset's URL is a deploy-time join
    assert (
        "--no-index" in data and "--require-hashes -r" in data and "requirements-agent.txt" in data
    )
    assert "pip install --no-index --no-deps" in data  # streamfleet itself, from the same asset
    assert "streamfleet agent --help" in data


def test_build_instances_are_private_imdsv2_and_read_only_their_inputs(regional: Template) -> None:
    profile = Capture()
    subnet = Capture()
    regional.has_resource_properties(
        "AWS::ImageBuilder::InfrastructureConfiguration",
        {
            "InstanceTypes": ["g4dn.xlarge"],
            "InstanceProfileName": {"Ref": profile},
            "SubnetId": {"Ref": subnet},
            "TerminateInstanceOnFailure": True,
            "InstanceMetadataOptions": Match.object_like({"HttpTokens": "required"}),
        },
    )
    resources = regional.to_json()["Resources"]
    assert resources[subnet.as_string()]["Properties"]["MapPublicIpOnLaunch"] is False
    (role,) = resources[profile.as_string()]["Properties"]["Roles"]
    reads = [
        s
        for p in of_type(regional, "AWS::IAM::Policy").values()
        if role in p["Roles"]
        for s in p["PolicyDocument"]["Statement"]
    ]
    (statement,) = reads
    assert statement["Action"] == "s3:GetObject"
    objects = sorted(flatten(r) for r in statement["Resource"])
    assert objects[0].endswith(":s3:::acme-builds/configurator/linux-1.4.zip")
    assert "cdk-hnb659fds-assets" in objects[1] and objects[1].endswith(".zip")


def test_gpu_fleet_launches_the_baked_image(regional: Template) -> None:
    image = Capture()
    regional.has_resource_properties(
        "AWS::ImageBuilder::Image",
        {"ImageTestsConfiguration": {"ImageTestsEnabled": True, "TimeoutMinutes": 90}},
    )
    regional.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": Match.object_like({"ImageId": {"Fn::GetAtt": [image, "ImageId"]}})},
    )
    assert regional.to_json()["Resources"][image.as_string()]["Type"] == "AWS::ImageBuilder::Image"


def test_pipeline_rebuilds_on_schedule_and_publishes_the_id(regional: Template) -> None:
    recipe = Capture()
    regional.has_resource_properties(
        "AWS::ImageBuilder::ImagePipeline",
        {
            "ImageRecipeArn": {"Fn::GetAtt": [recipe, "Arn"]},
            "Schedule": {
                "ScheduleExpression": SCHEDULE,
                "PipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY",
            },
            "Status": "ENABLED",
        },
    )
    regional.has_resource_properties(
        "AWS::ImageBuilder::Image", {"ImageRecipeArn": {"Fn::GetAtt": [recipe.as_string(), "Arn"]}}
    )
    regional.has_resource_properties(
        "AWS::ImageBuilder::DistributionConfiguration",
        {
            "Distributions": [
                Match.object_like(
                    {
                        "Region": REGION,
                        "SsmParameterConfigurations": [
                            {
                                "ParameterName": "/streamfleet/gpu-image/latest",
                                "DataType": "aws:ec2:image",
                            }
                        ],
                    }
                )
            ]
        },
    )


def test_names_follow_content_so_a_change_is_a_replacement() -> None:
    a, b = (
        agent_document("hash-a", "requirements.lock"),
        agent_document("hash-b", "requirements.lock"),
    )
    assert content_hash("1.0.0", a) == content_hash("1.0.0", a) != content_hash("1.0.0", b)


# ---- geo-IP on the control plane -------------------------------------------------


def control_plane_boot(app: Synthesized) -> tuple[Template, str]:
    template = app.template(app.built.control_plane)
    scripts = [
        flatten(p["LaunchTemplateData"]["UserData"])
        for p in of_type(template, "AWS::EC2::LaunchTemplate").values()
    ]
    (boot,) = [s for s in scripts if "ExecStart=/usr/local/bin/streamfleet control-plane" in s]
    return template, boot


def test_control_plane_reads_the_refreshed_database(app: Synthesized) -> None:
    _, boot = control_plane_boot(app)
    assert "STREAMFLEET_GEOIP_DB='/var/lib/streamfleet/geoip/City.mmdb'" in boot
    assert "OnCalendar=Wed,Sat *-*-* 04:00:00" in boot and "RandomizedDelaySec=1h" in boot
    assert "systemctl enable --now streamfleet-geoip.timer" in boot
    assert "ExecStart=/usr/local/sbin/streamfleet-geoip" in boot
    assert f"--secret-id '{LICENCE}'" in boot and "GeoLite2-City/download" in boot


def test_only_the_control_plane_reads_the_licence(app: Synthesized) -> None:
    template, _ = control_plane_boot(app)
    readers = {r for r, names in secrets_readable_by_role(template).items() if LICENCE in names}
    assert len(readers) == 1


def test_geoip_from_s3_reads_that_object_only(s3_geoip_app: Synthesized) -> None:
    template, boot = control_plane_boot(s3_geoip_app)
    assert "SOURCE='s3'" in boot and "'s3://acme-geo/GeoIP2-City.mmdb'" in boot
    assert "OnCalendar=daily" in boot
    # Policies are minimized: statements with the same action merge their resources.
    objects = [
        flatten(r)
        for p in of_type(template, "AWS::IAM::Policy").values()
        for s in p["PolicyDocument"]["Statement"]
        if "s3:GetObject" in as_list(s["Action"])
        for r in as_list(s["Resource"])
    ]
    assert any(o.endswith(":s3:::acme-geo/GeoIP2-City.mmdb") for o in objects), objects
    assert not any("acme-geo" in o and "*" in o for o in objects)


def test_refresh_script_is_valid_bash(app: Synthesized, tmp_path: Path) -> None:
    _, boot = control_plane_boot(app)
    start = boot.index("cat >'/usr/local/sbin/streamfleet-geoip' <<'STREAMFLEET_FILE_END'\n")
    body = boot[start:].split("\n", 1)[1].split("\nSTREAMFLEET_FILE_END\n", 1)[0]
    script = tmp_path / "streamfleet-geoip"
    script.write_text(body)
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "@@" not in body
