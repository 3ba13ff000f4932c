"""Deployed first: the shared secrets, in the control-plane region, with their replicas.

A stack of its own so the control-plane stack can be replaced without losing
keys, and so every regional stack finds its replicas (by name) when it deploys.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from streamfleet_cdk.components.secrets import SharedSecrets
from streamfleet_cdk.config import DeploymentConfig, SecretNames


class SecretsStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: DeploymentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.secrets = SharedSecrets(
            self,
            "Secrets",
            names=SecretNames(config.name),
            regions=[r.name for r in config.regions],
            token_signing_kid=config.control_plane.token_signing_kid,
        )
        CfnOutput(
            self,
            "SecretNames",
            value=", ".join(s.secret_name for s in self.secrets.all()),
            description="Secrets Manager names (values only in Secrets Manager)",
        )
