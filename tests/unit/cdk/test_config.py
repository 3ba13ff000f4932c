"""The deployment configuration: defaults of docs/design.md and validation before any construct exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from streamfleet_cdk.config import (
    AGENT_PORT,
    CONTROL_PLANE_PORT,
    ROUTER_PORT,
    TURN_PORT,
    TURN_RELAY_PORTS,
    DeploymentConfig,
    Dns,
    Geography,
    GpuFleet,
    RegionConfig,
    SecretNames,
)


def region(**overrides: object) -> RegionConfig:
    values: dict[str, object] = {
        "name": "eu-west-1",
        "geography": Geography.EU,
        "lat": 53.35,
        "lon": -6.26,
        "availability_zones": ("eu-west-1a", "eu-west-1b"),
        "vpc_cidr": "10.11.0.0/16",
    }
    values.update(overrides)
    return RegionConfig.model_validate(values)


def test_default_is_the_design_layout() -> None:
    config = DeploymentConfig()
    assert config.control_plane.region == "eu-central-1"
    by_geo: dict[Geography, list[str]] = {}
    for r in config.regions:
        by_geo.setdefault(r.geography, []).append(r.name)
    assert by_geo == {
        Geography.EU: ["eu-central-1", "eu-west-1"],
        Geography.US: ["us-east-1", "us-west-2"],
    }
    for r in config.regions:
        assert len(r.availability_zones) >= 2
        assert all(z.startswith(r.name) for z in r.availability_zones)


def test_default_gpu_fleet_is_g4dn_with_fallbacks_and_a_warm_pool() -> None:
    gpu = DeploymentConfig().regions[0].gpu
    assert gpu.primary_type == "g4dn.2xlarge"
    assert gpu.fallback_types and "g4dn.2xlarge" not in gpu.fallback_types
    assert gpu.warm_pool is not None and gpu.warm_pool.min_size > 0


def test_ports_are_the_contract() -> None:
    assert (CONTROL_PLANE_PORT, AGENT_PORT, ROUTER_PORT, TURN_PORT) == (8080, 8700, 80, 3478)
    assert TURN_RELAY_PORTS == (49152, 65535)


def test_json_file_round_trip(tmp_path: Path) -> None:
    config = DeploymentConfig(account="123456789012", shield_advanced=True)
    path = tmp_path / "deploy.json"
    path.write_text(config.model_dump_json())
    assert DeploymentConfig.from_json_file(path) == config


def test_json_file_rejects_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "deploy.json"
    path.write_text(json.dumps({"sheild_advanced": True}))
    with pytest.raises(ValidationError, match="sheild_advanced"):
        DeploymentConfig.from_json_file(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"availability_zones": ("eu-west-1a",)}, "at least two availability zones"),
        ({"availability_zones": ("eu-west-1a", "us-east-1a")}, "in another region"),
        ({"vpc_cidr": "10.11.0.0/33"}, "10.11.0.0/33"),
    ],
)
def test_region_is_validated(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        region(**overrides)


def test_overlapping_vpcs_are_refused() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        DeploymentConfig(
            regions=(
                region(),
                region(
                    name="eu-west-2",
                    availability_zones=("eu-west-2a", "eu-west-2b"),
                    vpc_cidr="10.11.128.0/17",
                ),
            )
        )


def test_a_region_listed_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="twice"):
        DeploymentConfig(regions=(region(), region()))


def test_without_a_hosted_zone_every_endpoint_needs_a_certificate() -> None:
    with pytest.raises(ValidationError, match=r"api\.stream\.example\.com"):
        DeploymentConfig(regions=(region(),), dns=Dns(hosted_zone_id=None))
    dns = Dns(
        hosted_zone_id=None,
        certificate_arns={
            "api.stream.example.com": "arn:aws:acm:eu-central-1:123456789012:certificate/a",
            "eu-west-1.stream.example.com": "arn:aws:acm:eu-west-1:123456789012:certificate/b",
        },
    )
    assert DeploymentConfig(regions=(region(),), dns=dns).dns.hosted_zone_id is None


def test_log_retention_must_be_one_cloudwatch_offers() -> None:
    with pytest.raises(ValidationError, match="no 31-day retention"):
        DeploymentConfig(log_retention_days=31)


def test_pool_manager_settings_cannot_override_what_the_stack_sets() -> None:
    with pytest.raises(ValidationError, match="ASG_NAME"):
        GpuFleet(pool_manager_settings={"asg_name": "other"})
    assert GpuFleet(pool_manager_settings={"policy": "buffer"}).pool_manager_settings


def test_pinned_ami_ids_must_be_ami_ids() -> None:
    with pytest.raises(ValidationError, match="not an AMI id"):
        DeploymentConfig.model_validate(
            {"gpu_ami": {"ssm_parameter": "/x", "ids": {"eu-west-1": "i-123"}}}
        )


def test_secret_names_are_shared_by_creator_and_readers() -> None:
    names = SecretNames("sf")
    assert names.token_keys == "sf/token-keys"
    assert names.agent_secret("us-west-2") == "sf/agent-secret/us-west-2"
    assert (
        len(
            {
                names.token_keys,
                names.turn_secret,
                names.admin_token,
                names.agent_secrets,
                names.redis_auth,
                names.redis_url,
            }
        )
        == 6
    )


_ID_VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "identifiers.json").read_text()
)


@pytest.mark.parametrize(
    ("name", "ok"),
    [(v, True) for v in _ID_VECTORS["region"]["valid"]]
    + [(v, False) for v in _ID_VECTORS["region"]["invalid"]],
)
def test_region_names_follow_the_control_planes_rule(name: str, ok: bool) -> None:
    # Zones are derived from the name so that only the name is judged.
    build = lambda: region(name=name, availability_zones=(name + "a", name + "b"))  # noqa: E731
    if ok:
        assert build().name == name
    else:
        with pytest.raises(ValidationError):
            build()
