"""The composition root: one typed configuration in, the whole CDK app out.

Used by `app.py` (the `cdk` CLI and `make synth`) and by the tests, so what is
tested is what is deployed. Feature flags come from cdk.json, the one place
the CLI also reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from streamfleet_cdk.config import DeploymentConfig
from streamfleet_cdk.stacks.control_plane_stack import ControlPlaneStack
from streamfleet_cdk.stacks.regional_stack import RegionalStack
from streamfleet_cdk.stacks.secrets_stack import SecretsStack

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def feature_flags() -> dict[str, Any]:
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    assert isinstance(context, dict)
    return context


@dataclass(frozen=True)
class StreamfleetApp:
    app: App
    secrets: SecretsStack
    control_plane: ControlPlaneStack
    regions: dict[str, RegionalStack]


def build_app(
    config: DeploymentConfig,
    *,
    outdir: str | None = None,
    context: dict[str, Any] | None = None,
    nag: bool = True,
) -> StreamfleetApp:
    """Secrets, control plane and one stack per region, deployed in that order.

    With `nag`, cdk-nag's AwsSolutions pack validates the app at synth: any
    finding that is not acknowledged (with its reason) fails the synthesis.
    """
    app = App(outdir=outdir, context={**feature_flags(), **(context or {})})

    def env(region: str) -> Environment:
        return Environment(account=config.account, region=region)

    home = config.control_plane.region
    secrets = SecretsStack(
        app,
        f"{config.name}-secrets",
        config=config,
        env=env(home),
        description="streamfleet shared secrets (deploy first)",
    )
    control_plane = ControlPlaneStack(
        app,
        f"{config.name}-control-plane",
        config=config,
        env=env(home),
        description="streamfleet control plane",
    )
    control_plane.add_stack_dependency(secrets, "reads the shared secrets")
    regions: dict[str, RegionalStack] = {}
    for region in config.regions:
        stack = RegionalStack(
            app,
            f"{config.name}-{region.name}",
            config=config,
            region=region,
            env=env(region.name),
            description=f"streamfleet regional stack {region.name}",
        )
        stack.add_stack_dependency(secrets, "reads the secret replicas of its region")
        stack.add_stack_dependency(control_plane, "agents and pool manager call the control plane")
        regions[region.name] = stack
    if nag:
        Validations.of(app).add_plugins(
            AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
        )
    return StreamfleetApp(app, secrets, control_plane, regions)
