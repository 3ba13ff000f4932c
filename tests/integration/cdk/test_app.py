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

from tests.integration.cdk.conftest import CDK_APP, Synthesized

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


def test_cdk_nag_fails_the_synthesis_on_a_finding(tmp_path: Path) -> None:
    """The validation is wired in: an unencrypted, unlogged bucket stops the synth."""
    config = DeploymentConfig(regions=(DeploymentConfig().region("eu-west-1"),))
    built = build_app(config, outdir=str(tmp_path))
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


def test_source_bundle_holds_the_distribution_only(default_app: Synthesized) -> None:
    (bundle,) = [p.parent for p in default_app.outdir.glob("asset.*/pyproject.toml")]
    top = {p.name for p in bundle.iterdir()}
    assert {"pyproject.toml", "streamfleet", "control_plane", "regional_stack", "nginx_lua"} <= top
    assert top <= {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "streamfleet",
        "control_plane",
        "regional_stack",
        "nginx_lua",
        "simulators",
    }
    assert not list(bundle.rglob("__pycache__"))
    assert not (bundle / "simulators" / "out").exists()
    assert (bundle / "nginx_lua" / "router.conf.tmpl").is_file()
    assert (bundle / "regional_stack" / "coturn" / "turnserver.conf").is_file()


def test_every_configurable_retention_is_one_cloudwatch_has() -> None:
    # config.py (pure) and retention.py (CDK enum) list the same periods.
    mapped = {days: retention(days) for days in LOG_RETENTION_DAYS}
    assert len(set(mapped.values())) == len(LOG_RETENTION_DAYS)
