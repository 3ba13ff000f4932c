"""`streamfleet pool-manager --region R`: the composition root of one region's pool manager."""

from __future__ import annotations

import argparse
import logging
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from regional_stack.pool.asg import AutoScalingGroup, RetryPolicy
from regional_stack.pool.http_port import ControlPlaneError, HttpControlPlane
from regional_stack.pool.manager import LeadTimes, PoolManager
from regional_stack.pool.metrics import PoolMetrics
from regional_stack.pool.settings import PoolSettings
from streamfleet.logs import setup_logging

log = logging.getLogger("streamfleet.pool")


def settings_help() -> str:
    """Every setting with its environment variable and default, for `--help`."""
    lines = ["settings (environment variables):"]
    for name, field in PoolSettings.model_fields.items():
        env = f"{PoolSettings.model_config.get('env_prefix', '')}{name.upper()}"
        if "Secret" in str(field.annotation):
            default = "(secret)"
        elif field.default_factory is not None:
            default = repr(field.default_factory())  # type: ignore[call-arg]
        else:
            default = repr(field.default)
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation)
        kind = kind.replace("typing.", "")
        lines.append(f"  {env:<42} {kind} [default: {default}]")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Size one region's warm pool: each pass reads the region's demand from the control\n"
        "plane's ops API, applies the pool policy and sets the Auto Scaling group's desired\n"
        "capacity (boto3; moto locally). Options override the environment."
    )
    parser.epilog = settings_help()
    parser.add_argument("--region", help="region to manage (STREAMFLEET_POOL_REGION)")
    parser.add_argument("--asg-name", help="Auto Scaling group (STREAMFLEET_POOL_ASG_NAME)")
    parser.add_argument("--once", action="store_true", help="one reconcile pass, then exit")
    parser.add_argument("--interval", type=float, help="seconds between passes")


def build(settings: PoolSettings) -> PoolManager:
    # One code path for AWS and a local stand-in: an endpoint URL (moto, set by
    # the local stack) is the only difference; credentials always come from the
    # environment or the instance role, never from this package.
    endpoint = settings.aws_endpoint_url or None
    # Retries belong to one policy (RetryPolicy); botocore's own are turned down to one attempt.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    autoscaling = boto3.client(
        "autoscaling", region_name=settings.region, endpoint_url=endpoint, config=config
    )
    ec2 = boto3.client("ec2", region_name=settings.region, endpoint_url=endpoint, config=config)
    retry = RetryPolicy(settings.retry_attempts, settings.retry_base_s, settings.retry_max_s)
    return PoolManager(
        region=settings.region,
        port=HttpControlPlane(settings.control_plane_url, settings.admin_token.get_secret_value()),
        group=AutoScalingGroup(autoscaling, ec2, settings.asg_name, retry),
        policy=settings.build_policy(),
        damping=settings.damping(),
        instance_types=settings.instance_types(),
        subnets=settings.subnets,
        lead_times=LeadTimes(settings.cold_lead_s, settings.warm_lead_s),
        constraint_hold_s=settings.constraint_hold_s,
    )


def run(args: argparse.Namespace) -> int:
    setup_logging("pool-manager")
    overrides = {
        k: v
        for k, v in {
            "region": args.region,
            "asg_name": args.asg_name,
            "interval_s": args.interval,
        }.items()
        if v is not None
    }
    settings = PoolSettings(**overrides)
    manager = build(settings)
    metrics = PoolMetrics(settings.region)
    if settings.metrics_port:
        metrics.serve(settings.metrics_host, settings.metrics_port)
    if args.once:
        report = manager.reconcile_once()
        print(f"target={report.target} desired={report.desired} constrained={report.constrained}")
        return 0
    stop = threading.Event()
    while not stop.is_set():
        reconcile_pass(manager, metrics)
        stop.wait(settings.interval_s)
    return 0


def reconcile_pass(manager: PoolManager, metrics: PoolMetrics) -> bool:
    """One pass of the loop; a failure of either side changes nothing this pass and
    the next pass tries again (the retry policy already retried the transient ones).
    Returns whether the pass completed."""
    try:
        metrics.observe(manager.reconcile_once())
    except ControlPlaneError as exc:
        # No view of who is serving: change nothing this pass, try again later.
        metrics.failed("control_plane_unavailable")
        log.warning("pool %s: control plane unavailable: %s", manager.region, exc)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        # The cloud API failed past its retries, or answered something that is not
        # its API (an HTML 500 from a proxy or a stand-in): the pool stays as it is.
        metrics.failed("cloud_unavailable")
        log.warning("pool %s: cloud API failed: %s", manager.region, exc)
    else:
        return True
    return False
