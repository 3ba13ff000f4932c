"""Synthesize the CDK app once per test session; every test reads the same assembly.

Synthesis runs cdk-nag's AwsSolutions pack as a validation plugin: an
unacknowledged finding makes the fixture itself fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
CDK_APP = Path(__file__).resolve().parents[3] / "infra" / "cdk"
if str(CDK_APP) not in sys.path:
    sys.path.insert(0, str(CDK_APP))

from aws_cdk import Stack  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from aws_cdk.cx_api import CloudAssembly  # noqa: E402
from streamfleet_cdk.app_builder import StreamfleetApp, build_app  # noqa: E402
from streamfleet_cdk.config import DeploymentConfig, Dns, Redis  # noqa: E402

from simulators.imds import IdentitySigner  # noqa: E402
from tests.fixtures.release import build_wheel, build_wheelhouse  # noqa: E402

# Stands in for AWS's published per-region certificates (a deployer pastes those).
TEST_IDENTITY_KEY = IdentitySigner().public_pem()


def certified(config: DeploymentConfig) -> DeploymentConfig:
    """`config` with an identity certificate for every region, as a deployable one has."""
    regions = tuple(
        r.model_copy(update={"identity_certificate": TEST_IDENTITY_KEY}) for r in config.regions
    )
    return config.model_copy(update={"regions": regions})


@dataclass(frozen=True)
class Synthesized:
    config: DeploymentConfig
    built: StreamfleetApp
    assembly: CloudAssembly
    outdir: Path

    def template(self, stack: Stack) -> Template:
        return Template.from_stack(stack)

    @property
    def stacks(self) -> list[Stack]:
        return [self.built.secrets, self.built.control_plane, *self.built.regions.values()]


def _synthesize(config: DeploymentConfig, outdir: Path, wheelhouse: Path) -> Synthesized:
    built = build_app(config, outdir=str(outdir), context={"wheelhouse": str(wheelhouse)})
    return Synthesized(config, built, built.app.synth(), outdir)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real wheelhouse (`make wheelhouse`): the asset every node installs from."""
    wheel = build_wheel(tmp_path_factory.mktemp("dist"))
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"), ("server", "agent"), wheel)


@pytest.fixture(scope="session")
def default_app(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path
) -> Iterator[Synthesized]:
    """The default configuration: secrets, control plane and the four regions."""
    config = certified(DeploymentConfig())
    yield _synthesize(config, tmp_path_factory.mktemp("cdk-default"), wheelhouse)


@pytest.fixture(scope="session")
def variant_app(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path
) -> Iterator[Synthesized]:
    """The optional features on, in a smaller app: Shield Advanced, Redis cluster
    mode, certificates from ARNs without a hosted zone, no interface endpoints."""
    default = certified(DeploymentConfig())
    region = default.region("us-west-2")
    config = DeploymentConfig(
        account="123456789012",
        regions=(region,),
        shield_advanced=True,
        interface_endpoints=False,
        control_plane=default.control_plane.model_copy(
            update={"redis": Redis(cluster_mode=True, shards=3)}
        ),
        dns=Dns(
            zone_name="example.org",
            hosted_zone_id=None,
            certificate_arns={
                "api.example.org": "arn:aws:acm:eu-central-1:123456789012:certificate/cp",
                "us-west-2.example.org": "arn:aws:acm:us-west-2:123456789012:certificate/r",
            },
        ),
        alarm_email="ops@example.org",
    )
    yield _synthesize(config, tmp_path_factory.mktemp("cdk-variant"), wheelhouse)
