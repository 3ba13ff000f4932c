"""`streamfleet up`: the whole local stack, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from simulators.local_stack.launcher import LocalStack, PortInUse
from simulators.local_stack.plan import KNOWN_REGIONS, make_plan, parse_pool_sizes
from simulators.local_stack.state import UnsafeStateDir, remove_state, write_state
from streamfleet.logs import add_json_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the whole system on this machine, on loopback: Redis, moto (local AWS) with a VPC,\n"
        "launch template and Auto Scaling group per region, the control plane, and per region a\n"
        "pool manager, an nginx + Lua router and coturn. Every instance moto runs becomes a real\n"
        "agent with a renderer stub. Prints READY {json} when the warm pools are ready; Ctrl-C stops all."
    )
    parser.add_argument(
        "--regions", default=",".join(KNOWN_REGIONS),
        help=f"comma-separated regions (default: {','.join(KNOWN_REGIONS)})",
    )  # fmt: skip
    parser.add_argument(
        "--pool-size", action="append", default=[], metavar="[REGION=]N",
        help="hot instances per region: N for all, REGION=N for one; repeatable (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--policy", default="static", choices=["static", "buffer", "predictive", "composed"],
        help="pool policy of every region's pool manager (default static)",
    )  # fmt: skip
    parser.add_argument(
        "--base-port",
        type=int,
        default=8080,
        help="control plane port; others follow it (default 8080)",
    )
    parser.add_argument(
        "--redis-url", help="use this Redis instead of starting one (its data is shared!)"
    )
    parser.add_argument(
        "--redis", default="single", choices=["single", "sentinel"],
        help="single: one Redis (default); sentinel: a primary, a replica and three Redis "
        "Sentinels, which the control plane follows through a failover (docs/operations.md)",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", type=Path, help="logs, configs and data (default: a new temporary folder)"
    )
    parser.add_argument(
        "--demo-visit-from", action="store_true",
        help="local demo only: let the configurator page pretend to visit from another city",
    )  # fmt: skip
    parser.add_argument(
        "--ready-timeout", type=float, default=180.0, help="seconds to wait for the pools"
    )
    parser.add_argument(
        "--prometheus", action="store_true",
        help="also start Prometheus (Debian's /usr/bin/prometheus) scraping every part, with the "
        "repo's alert rules, on base port + 70",
    )  # fmt: skip


log = logging.getLogger("streamfleet.up")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
    log.info(message)  # and to the work folder's launcher.log, as JSON


async def main_async(stack: LocalStack, timeout: float) -> int:
    stop = asyncio.Event()
    state: Path | None = None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.create_task(stack.start(timeout))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if starting not in done:
            starting.cancel()
            say("interrupted while starting")
            return 130
        stopper.cancel()
        info = starting.result()
        print("READY " + json.dumps(info), flush=True)
        # For `streamfleet status` (owner-only: it holds the admin token).
        try:
            state = write_state(info, os.getpid())
        except (OSError, UnsafeStateDir) as exc:  # the stack runs anyway; status needs flags
            say(f"no state file for `streamfleet status`: {exc}")
        say(f"configurator: {info['configurator_url']}")
        say(f"status page:  {info['status_url']}")
        say("press Ctrl-C to stop everything")
        await stack.supervise(stop)
        return 0
    finally:
        if state is not None:
            remove_state(state)
        await asyncio.to_thread(stack.stop)
        say("stopped")


def run(args: argparse.Namespace) -> int:
    try:
        pools = parse_pool_sizes(args.pool_size)
        regions = [r.strip() for r in args.regions.split(",") if r.strip()]
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="streamfleet-up-"))
        plan = make_plan(
            workdir=workdir, regions=regions, pool_sizes=pools, base_port=args.base_port,
            redis_url=args.redis_url, demo_visit_from=args.demo_visit_from, policy=args.policy,
            prometheus=args.prometheus, redis_mode=args.redis,
        )  # fmt: skip
    except ValueError as exc:
        print(f"streamfleet up: {exc}", file=sys.stderr)
        return 2
    # Owner-only, everything the stack writes (logs, configs, Redis data, nginx
    # logs): the umask reaches every child, the chmod a --workdir that existed.
    os.umask(0o077)
    try:
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        workdir.chmod(0o700)
    except OSError as exc:
        print(f"streamfleet up: work folder {workdir}: {exc}", file=sys.stderr)
        return 2
    add_json_file("up", workdir / "launcher.log")
    say(f"streamfleet up: {len(plan.regions)} region(s), work folder {workdir}")
    stack = LocalStack(plan, say)
    try:
        return asyncio.run(main_async(stack, args.ready_timeout))
    except PortInUse as exc:
        print(f"streamfleet up: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"streamfleet up: {exc}", file=sys.stderr)
        return 1
