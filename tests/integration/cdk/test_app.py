"""The whole app: every template, the deployment order, cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import aws_s3 as s3
from streamfleet_cdk.app_builder import build_app
from streamfleet_cdk.config import LOG_RETENTION_DAYS, DeploymentConfig
from streamfleet_cdk.retention import retention

from tests.integration.cdk.conftest import CDK_APP, Synthesized, certified

STACKS = [
    "streamfleet-secrets",
    "streamfleet-control-plane",
    "streamfleet-eu-central-1",
    "streamfleet-eu-west-1",
    "streamfleet-us-east-1",
    "streamfleet-us-west-2",
]


def test_default_app_writes_every_template(default_app: Synthesized) -> None:
    written = sorted(p.name for p in default_app.outdir.glob("*.template.json"))
    assert written == sorted(f"{s}.template.json" for s in STACKS)
    regions = {s.stack_name: s.region for s in default_app.stacks}
    assert regions == {
        "streamfleet-secrets": "eu-central-1",
        "streamfleet-control-plane": "eu-central-1",
        "streamfleet-eu-central-1": "eu-central-1",
        "streamfleet-eu-west-1": "eu-west-1",
        "streamfleet-us-east-1": "us-east-1",
        "streamfleet-us-west-2": "us-west-2",
    }


def test_deployment_order_is_secrets_then_control_plane_then_regions(
    default_app: Synthesized,
) -> None:
    def needs(stack: str) -> set[str]:
        artifact = default_app.assembly.get_stack_by_name(stack)
        return {d.id for d in artifact.dependencies if not d.id.endswith(".assets")}

    assert needs("streamfleet-secrets") == set()
    assert needs("streamfleet-control-plane") == {"streamfleet-secrets"}
    for region in STACKS[2:]:
        assert needs(region) == {"streamfleet-secrets", "streamfleet-control-plane"}


def test_cdk_nag_aws_solutions_passes(default_app: Synthesized, variant_app: Synthesized) -> None:
    # Synthesis itself fails on an unacknowledged finding (see the next test);
    # the report only lists what was checked and acknowledged.
    for app in (default_app, variant_app):
        report = json.loads((app.outdir / "validation-report.json").read_text())
        for plugin in report["pluginReports"]:
            assert plugin["conclusion"] == "success", plugin["pluginName"]
            assert plugin["violations"] == []


def test_cdk_nag_fails_the_synthesis_on_a_finding(tmp_path: Path, wheelhouse: Path) -> None:
    """The validation is wired in: an unencrypted, unlogged bucket stops the synth."""
    config = certified(DeploymentConfig(regions=(DeploymentConfig().region("eu-west-1"),)))
    built = build_app(config, outdir=str(tmp_path), context={"wheelhouse": str(wheelhouse)})
    s3.Bucket(built.secrets, "CarelessBucket")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        built.app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    findings = {
        v["ruleName"]: [c["constructPath"] for c in v["violatingConstructs"]]
        for v in nag["violations"]
    }
    assert findings == {
        "AwsSolutions-S1": ["streamfleet-secrets/CarelessBucket/Resource"],
        "AwsSolutions-S10": ["streamfleet-secrets/CarelessBucket/Resource"],
    }


def test_every_acknowledged_finding_carries_a_reason(default_app: Synthesized) -> None:
    acknowledged: dict[str, str] = {}
    for path in default_app.outdir.glob("*.template.json"):
        for resource in json.loads(path.read_text())["Resources"].values():
            nag = resource.get("Metadata", {}).get("cdk_nag", {})
            for rule in nag.get("rules_to_suppress", []):
                if rule["id"].startswith("AwsSolutions-"):
                    acknowledged[rule["id"]] = rule["reason"]
    assert acknowledged, "cdk-nag ran and recorded its acknowledgments"
    for rule, reason in acknowledged.items():
        assert len(reason) >= 40 and reason[0].isupper() and reason.endswith("."), rule


def test_cfn_lint_passes_on_every_template(
    default_app: Synthesized, variant_app: Synthesized
) -> None:
    templates = sorted(
        str(p) for app in (default_app, variant_app) for p in app.outdir.glob("*.template.json")
    )
    assert len(templates) == 6 + 3
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--config-file", str(CDK_APP / ".cfnlintrc.yaml"), *templates],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_nodes_install_from_a_hash_locked_wheelhouse_asset(
    default_app: Synthesized, wheelhouse: Path
) -> None:
    (asset,) = {p.parent for p in default_app.outdir.glob("asset.*/requirements-server.txt")}
    wheels = {p.name for p in asset.glob("*.whl")}
    assert {p.name for p in wheelhouse.iterdir()} == {p.name for p in asset.iterdir()}
    for role in ("server", "agent"):
        lines = (asset / f"requirements-{role}.txt").read_text().splitlines()
        pins = [line for line in lines if line and not line[0].isspace() and line[0] != "#"]
        # Every requirement is pinned exactly and hash-checked; streamfleet is this build's wheel.
        assert pins and all("==" in p for p in pins)
        (own,) = [p for p in pins if p.startswith("streamfleet[")]
        assert own.startswith(f"streamfleet[{role}]==") and "--hash=sha256:" in own
        assert any(w.startswith("streamfleet-") for w in wheels)
        for pin in pins:
            name = pin.split("==")[0].split("[")[0].replace("-", "_").lower()
            assert any(w.lower().startswith(name + "-") for w in wheels), pin
    assert not list(asset.glob("*.tar.gz"))  # wheels only: nothing is built on an instance


def test_synth_without_a_wheelhouse_says_how_to_make_one(tmp_path: Path) -> None:
    config = DeploymentConfig(regions=(DeploymentConfig().region("eu-west-1"),))
    with pytest.raises(FileNotFoundError, match="make wheelhouse"):
        build_app(config, outdir=str(tmp_path), context={"wheelhouse": str(tmp_path / "none")})


def test_every_configurable_retention_is_one_cloudwatch_has() -> None:
    # config.py (pure) and retention.py (CDK enum) list the same periods.
    mapped = {days: retention(days) for days in LOG_RETENTION_DAYS}
    assert len(set(mapped.values())) == len(LOG_RETENTION_DAYS)
