#!/usr/bin/env python3
"""streamfleet CDK app: `cdk synth` / `cdk deploy` (see docs/deploy.md), or `make synth`.

The configuration is `DeploymentConfig()` (streamfleet_cdk/config.py), or the
JSON file named by the context value `config`: `cdk synth -c config=prod.json`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aws_cdk import App  # noqa: E402
from streamfleet_cdk.app_builder import build_app  # noqa: E402
from streamfleet_cdk.config import DeploymentConfig  # noqa: E402


def load_config(path: str | None) -> DeploymentConfig:
    config = DeploymentConfig.from_json_file(Path(path)) if path else DeploymentConfig()
    if config.account is None and os.environ.get("CDK_DEFAULT_ACCOUNT"):
        config = config.model_copy(update={"account": os.environ["CDK_DEFAULT_ACCOUNT"]})
    return config


def main() -> None:
    # The CLI passes its context (cdk.json, -c) and output folder through the environment.
    outdir = os.environ.get("CDK_OUTDIR", str(HERE / "cdk.out"))
    config_path = App().node.try_get_context("config")  # -c config=FILE
    built = build_app(load_config(config_path), outdir=outdir)
    built.app.synth()


if __name__ == "__main__":
    main()
