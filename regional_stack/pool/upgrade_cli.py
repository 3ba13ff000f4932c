"""`streamfleet upgrade --regions R1,R2`: replace every GPU instance not on the
group's current launch-template image, region by region, ending no session.

Settings are the pool manager's (STREAMFLEET_POOL_*: control plane URL, admin
token, Auto Scaling group name, AWS endpoint); docs/deploy.md "Rolling upgrade".
"""

from __future__ import annotations

import argparse
import logging

from regional_stack.pool.cli import build
from regional_stack.pool.settings import PoolSettings
from regional_stack.pool.upgrade import RegionUpgrade, UpgradeTimeout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regions", required=True, help="comma-separated, upgraded in this order")
    parser.add_argument(
        "--image-id",
        help="first make a launch-template version with this AMI and point each group at it "
        "(default: upgrade to the version the group already launches, e.g. after `cdk deploy`)",
    )
    parser.add_argument(
        "--keep-ready",
        type=int,
        help="ready instances to keep at all times (default: as many as when the region starts)",
    )
    parser.add_argument("--batch", type=int, default=1, help="idle instances replaced at once")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between passes")
    parser.add_argument(
        "--timeout", type=float, default=24 * 3600.0, help="give up on a region after this long"
    )
    parser.add_argument(
        "--asg-name",
        help="each region's Auto Scaling group; {region} is replaced, e.g. "
        "'streamfleet-{region}-gpu' as the CDK app names them (default STREAMFLEET_POOL_ASG_NAME)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    for region in regions:
        overrides = {"region": region}
        if args.asg_name:
            overrides["asg_name"] = args.asg_name.replace("{region}", region)
        manager = build(PoolSettings(**overrides))
        upgrade = RegionUpgrade(
            region=region,
            port=manager.port,
            group=manager.group,
            keep_ready=args.keep_ready,
            batch=args.batch,
            interval_s=args.interval,
            timeout_s=args.timeout,
        )
        try:
            upgrade.run(image_id=args.image_id)
        except UpgradeTimeout as exc:
            print(f"upgrade stopped: {exc}")
            return 1
        print(f"{region}: upgraded in {len(upgrade.steps)} passes", flush=True)
    return 0
