"""What the instances run at boot is what the code expects: commands, settings, secrets.

Setting names are checked against the runtime's own settings classes and the
contracts document, the router invocation against the router's own CLI parser,
and each instance's secret reads against the grants of its role.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from importlib import resources
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from control_plane.settings import ControlPlaneSettings
from nginx_lua import cli as router_cli
from regional_stack.agent.settings import AgentSettings
from regional_stack.pool.settings import PoolSettings
from tests.integration.cdk.conftest import Synthesized
from tests.integration.cdk.helpers import flatten, of_type, secrets_readable_by_role

CONTRACTS = Path(__file__).resolve().parents[3] / "docs" / "contracts.md"
REGIONS = ["eu-central-1", "eu-west-1", "us-east-1", "us-west-2"]
ENV_LINE = re.compile(r"^(STREAMFLEET_[A-Z0-9_]+)='(.*)'$", re.MULTILINE)
DYNAMIC_ENV = re.compile(r"\b(STREAMFLEET_[A-Z0-9_]+)=(secret|imds):(\S+)")


def boot_scripts(template: Template) -> dict[str, str]:
    """Launch template logical id -> user data, grouped per role by the unit it runs."""
    return {
        k: flatten(p["LaunchTemplateData"]["UserData"])
        for k, p in of_type(template, "AWS::EC2::LaunchTemplate").items()
    }


def script_running(template: Template, exec_start: str) -> tuple[str, str]:
    found = [(k, t) for k, t in boot_scripts(template).items() if f"ExecStart={exec_start}" in t]
    assert len(found) >= 1, exec_start
    return found[0]


def settings_in(text: str) -> dict[str, str]:
    values = dict(ENV_LINE.findall(text))
    values.update({name: f"{kind}:{source}" for name, kind, source in DYNAMIC_ENV.findall(text)})
    return values


def contract_settings() -> set[str]:
    """Every STREAMFLEET_* name of docs/contracts.md (control plane: the prefix is implied)."""
    text = CONTRACTS.read_text(encoding="utf-8")
    names = set(re.findall(r"STREAMFLEET_[A-Z0-9_]+", text))
    control_plane = text.split("Control plane (", 1)[1].split("\n\n", 1)[0]
    names |= {f"STREAMFLEET_{n}" for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", control_plane)}
    return names


@pytest.fixture(params=REGIONS)
def region(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def regional(default_app: Synthesized, region: str) -> Template:
    return default_app.template(default_app.built.regions[region])


def test_gpu_instances_start_the_agent_with_its_settings(
    regional: Template, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, text = script_running(regional, "/usr/local/bin/streamfleet agent")
    settings = settings_in(text)
    fields = set(AgentSettings.model_fields)
    prefix = "STREAMFLEET_AGENT_"
    assert all(n.startswith(prefix) and n[len(prefix) :].lower() in fields for n in settings)
    assert settings["STREAMFLEET_AGENT_REGION"] == region
    assert settings["STREAMFLEET_AGENT_PORT"] == "8700"
    assert settings["STREAMFLEET_AGENT_CONTROL_PLANE_URL"] == "https://api.stream.example.com"
    assert settings["STREAMFLEET_AGENT_SECRET"] == f"secret:streamfleet/agent-secret/{region}"
    assert settings["STREAMFLEET_AGENT_TOKEN_KEYS"] == "secret:streamfleet/token-keys"
    assert settings["STREAMFLEET_AGENT_PRIVATE_IP"] == "imds:local-ipv4"
    assert settings["STREAMFLEET_AGENT_INSTANCE_ID"] == "imds:instance-id"
    assert settings["STREAMFLEET_AGENT_INSTANCE_TYPE"] == "imds:instance-type"
    # The agent's own settings class reads the environment as it will on the instance.
    key = "A1b2" * 16
    instance = {
        "imds:instance-id": "i-0123456789abcdef0",
        "imds:local-ipv4": "10.11.40.7",
        "imds:instance-type": "g4dn.2xlarge",
    }
    for name, value in settings.items():
        if value.startswith("secret:"):
            value = json.dumps({"k1": key}) if name.endswith("TOKEN_KEYS") else key
        monkeypatch.setenv(name, instance.get(value, value))
    parsed = AgentSettings()
    assert parsed.keyring().keys() == {"k1"}
    assert (parsed.private_ip, parsed.port) == ("10.11.40.7", 8700)
    # Started by the lifecycle hook handler once in service, not in the warm pool.
    assert "systemctl enable --now --no-block streamfleet-agent.service" not in text
    assert "systemctl enable --now --no-block streamfleet-lifecycle.service" in text
    assert "systemctl start streamfleet-agent.service" in text
    assert f'--auto-scaling-group-name "streamfleet-{region}-gpu"' in text


def test_pool_manager_runs_for_its_region_and_group(
    default_app: Synthesized, regional: Template, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, text = script_running(regional, f"/usr/local/bin/streamfleet pool-manager --region {region}")
    settings = settings_in(text)
    fields = set(PoolSettings.model_fields)
    prefix = "STREAMFLEET_POOL_"
    assert all(n.startswith(prefix) and n[len(prefix) :].lower() in fields for n in settings)
    gpu = default_app.config.region(region).gpu
    assert settings["STREAMFLEET_POOL_ASG_NAME"] == f"streamfleet-{region}-gpu"
    assert settings["STREAMFLEET_POOL_REGION"] == region
    assert settings["STREAMFLEET_POOL_PRIMARY_INSTANCE_TYPE"] == gpu.primary_type
    assert json.loads(settings["STREAMFLEET_POOL_FALLBACK_INSTANCE_TYPES"]) == list(
        gpu.fallback_types
    )
    assert settings["STREAMFLEET_POOL_ADMIN_TOKEN"] == "secret:streamfleet/admin-token"
    # The settings parse as the pool manager will parse them: from its environment.
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    parsed = PoolSettings()
    assert parsed.asg_name == f"streamfleet-{region}-gpu"
    assert parsed.instance_types() == list(gpu.instance_types)
    assert (parsed.min_size, parsed.max_size) == (gpu.min_size, gpu.max_size)


def test_router_config_command_is_one_the_router_cli_accepts(
    default_app: Synthesized, regional: Template, region: str
) -> None:
    _, text = script_running(regional, "/usr/sbin/nginx -p /run/streamfleet/router")
    command = re.search(r"streamfleet router-config .*?(?<!\\)\n", text, re.DOTALL)
    assert command is not None
    argv = shlex.split(command.group(0).replace("\\\n", " "))[2:]
    parser = argparse.ArgumentParser()
    router_cli.add_arguments(parser)
    args = parser.parse_args(argv)
    assert args.region == region
    assert args.listen == "0.0.0.0:80"
    assert args.region_cidr == default_app.config.region(region).vpc_cidr
    assert args.agent_port == 8700
    assert not args.test_endpoints
    assert '--secret-id "streamfleet/token-keys"' in text


def test_coturn_uses_the_repository_config_and_relays_to_its_vpc_only(
    default_app: Synthesized, regional: Template, region: str
) -> None:
    assert resources.files("regional_stack.coturn").joinpath("turnserver.conf").is_file()
    _, text = script_running(regional, "/usr/bin/turnserver -c /run/streamfleet/turnserver.conf")
    assert 'r.files("regional_stack.coturn") / "turnserver.conf"' in text
    cidr = default_app.config.region(region).vpc_cidr
    first, second = cidr.split(".")[:2]
    assert "denied-peer-ip=0.0.0.0-255.255.255.255" in text
    assert f"allowed-peer-ip={first}.{second}.0.0-{first}.{second}.255.255" in text
    assert '--secret-id "streamfleet/turn-secret"' in text


def test_control_plane_settings_are_the_ones_it_reads(
    default_app: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = default_app.template(default_app.built.control_plane)
    _, text = script_running(template, "/usr/local/bin/streamfleet control-plane")
    settings = settings_in(text)
    fields = {f"STREAMFLEET_{name.upper()}" for name in ControlPlaneSettings.model_fields}
    assert set(settings) <= fields
    # docs/contracts.md names every setting the instance sets.
    assert set(settings) - contract_settings() == set()
    secrets = {n: v.removeprefix("secret:") for n, v in settings.items() if v.startswith("secret:")}
    assert secrets == {
        "STREAMFLEET_REDIS_URL": "streamfleet/redis-url",
        "STREAMFLEET_TOKEN_KEYS": "streamfleet/token-keys",
        "STREAMFLEET_TURN_SECRET": "streamfleet/turn-secret",
        "STREAMFLEET_AGENT_SECRETS": "streamfleet/agent-secrets",
        "STREAMFLEET_ADMIN_TOKEN": "streamfleet/admin-token",
        "STREAMFLEET_AGENT_TOKEN_KEY": "streamfleet/agent-token-key",
    }
    # Values of the shapes the secrets stack generates, then the control plane's
    # own settings class reads the whole environment as it will on the instance.
    key = "A1b2" * 16
    fake = {
        "STREAMFLEET_REDIS_URL": f"rediss://:{key}@redis.internal:6380/0",
        "STREAMFLEET_TOKEN_KEYS": json.dumps({"k1": key}),
        "STREAMFLEET_TURN_SECRET": key,
        "STREAMFLEET_AGENT_SECRETS": json.dumps(dict.fromkeys(REGIONS, key)),
        "STREAMFLEET_ADMIN_TOKEN": key,
        "STREAMFLEET_AGENT_TOKEN_KEY": key,
    }
    for name, value in (settings | fake).items():
        monkeypatch.setenv(name, value)
    parsed = ControlPlaneSettings()
    assert parsed.missing_secrets() == []
    assert (parsed.http_host, parsed.http_port) == ("0.0.0.0", 8080)
    assert parsed.signing_kid() == "k1"
    assert parsed.trusted_proxies == [default_app.config.control_plane.vpc_cidr]
    assert parsed.region_names == REGIONS
    for region in parsed.regions:
        outputs = default_app.template(default_app.built.regions[region.name]).to_json()["Outputs"]
        assert region.router_url == outputs["RouterUrl"]["Value"]
        assert region.turn_uris == [
            f"turn:turn.{region.name}.stream.example.com:3478?transport={t}" for t in ("udp", "tcp")
        ]
        # An agent's private IP must lie in its region's VPC; its identity document is
        # checked with the region's configured certificate.
        assert region.private_cidrs == [default_app.config.region(region.name).vpc_cidr]
        configured = default_app.config.region(region.name).identity_certificate
        assert parsed.agent_identity_keys[region.name] == configured


def test_each_instance_reads_exactly_the_secrets_its_role_may_read(
    default_app: Synthesized,
) -> None:
    for stack in [default_app.built.control_plane, *default_app.built.regions.values()]:
        template = default_app.template(stack)
        readable = secrets_readable_by_role(template)
        resources_ = template.to_json()["Resources"]
        profiles = of_type(template, "AWS::IAM::InstanceProfile")
        for launch_template, text in boot_scripts(template).items():
            data = resources_[launch_template]["Properties"]["LaunchTemplateData"]
            profile = data["IamInstanceProfile"]["Arn"]["Fn::GetAtt"][0]
            (role,) = [r["Ref"] for r in profiles[profile]["Roles"]]
            used = set(re.findall(r"secret:([a-z0-9/-]+)", text))
            used |= set(re.findall(r'--secret-id "([a-z0-9/-]+)"', text))
            assert used == readable.get(role, set()), (stack.stack_name, launch_template)


def test_no_secret_value_reaches_user_data(default_app: Synthesized) -> None:
    for stack in default_app.stacks:
        for text in boot_scripts(default_app.template(stack)).values():
            assert "{{resolve:" not in text
            assert len(text.encode()) < 16 * 1024  # EC2's user data limit


def test_every_node_installs_its_role_offline_from_the_locked_wheelhouse(
    default_app: Synthesized,
) -> None:
    """No node asks a package index: the wheelhouse asset, hash-checked, the role's extra."""
    seen = set()
    for stack in [default_app.built.control_plane, *default_app.built.regions.values()]:
        for text in boot_scripts(default_app.template(stack)).values():
            installs = re.findall(r"pip install ((?:\\\n|[^\n])*)", text)
            assert len(installs) == 1, text
            (args,) = installs
            assert "--no-index" in args and "--require-hashes" in args
            assert "--find-links /opt/streamfleet/wheelhouse" in args
            (extra,) = re.findall(r"-r /opt/streamfleet/wheelhouse/requirements-(\w+)\.txt", args)
            gpu = "ExecStart=/usr/local/bin/streamfleet agent" in text
            assert extra == ("agent" if gpu else "server"), (stack.stack_name, extra)
            seen.add(extra)
    assert seen == {"agent", "server"}
