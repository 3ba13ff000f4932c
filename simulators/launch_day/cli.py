"""`streamfleet simulate launch-day`: compare pool policies over a simulated launch day.

Progress goes to stderr; the last line of stdout is the JSON summary, which is
also written next to the PNG plot.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from regional_stack.pool.damping import DampingConfig
from simulators.launch_day.run import run_all
from simulators.launch_day.scenario import Scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    day = sub.add_parser("launch-day", help="a launch day rising to the peak and falling away")
    defaults = Scenario()
    day.add_argument("--seed", type=int, default=defaults.seed)
    day.add_argument("--hours", type=float, default=defaults.day_s / 3600, help="simulated hours")
    day.add_argument("--peak", type=int, default=defaults.peak_parallel, help="peak sessions")
    day.add_argument(
        "--sessions",
        choices=("lognormal", "exponential", "fixed"),
        default=defaults.session_distribution,
        help="session length distribution",
    )
    day.add_argument("--mean-session-s", type=float, default=defaults.mean_session_s)
    day.add_argument("--cold-lead-s", type=float, default=defaults.cold_lead_s)
    day.add_argument("--warm-lead-s", type=float, default=defaults.warm_lead_s)
    day.add_argument("--no-warm-pool", action="store_true", help="cold launches only")
    day.add_argument("--capacity-error-rate", type=float, default=defaults.capacity_error_rate)
    day.add_argument("--out", type=Path, default=Path("simulators/out"), help="PNG + JSON folder")
    day.add_argument("--quiet", action="store_true", help="no progress on stderr")
    live = day.add_argument_group("live replay (--live: against the running system)")
    live.add_argument("--live", action="store_true", help="replay against a started local stack")
    live.add_argument("--speed", type=float, default=None,
                      help="time compression (default: the replay takes ~10 minutes)")  # fmt: skip
    live.add_argument("--policy", choices=("static", "buffer", "predictive"), default="buffer")
    live.add_argument("--buffer", type=int, default=5,
                      help="buffer policy: hot idle instances kept per region")  # fmt: skip
    live.add_argument("--static", type=int, default=None,
                      help="static policy: instances per region (default: the day's static "
                      "peak pool split over the regions)")  # fmt: skip
    live.add_argument("--connect", choices=("router", "agent"), default="router",
                      help="players open the stream through the region's router (signalling "
                      "to each simulated instance's address) or in-process to the agent")  # fmt: skip
    live.add_argument("--replicas", type=int, default=3, help="control-plane replicas")
    live.add_argument("--from-hour", type=float, default=0.0, help="replay from this hour")
    live.add_argument("--to-hour", type=float, default=None, help="replay until this hour")
    live.add_argument("--faults", default=None,
                      help="comma-separated: replica_kill9,capacity_errors,sentinel_failover,region_drain "
                      "(default all; empty for none)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    scenario = Scenario(
        seed=args.seed,
        day_s=args.hours * 3600.0,
        peak_parallel=args.peak,
        session_distribution=args.sessions,
        mean_session_s=args.mean_session_s,
        cold_lead_s=args.cold_lead_s,
        warm_lead_s=args.warm_lead_s,
        warm_pool=not args.no_warm_pool,
        capacity_error_rate=args.capacity_error_rate,
    )
    if args.live:
        return run_live_cli(args, scenario)
    summary = run_all(scenario, DampingConfig(), args.out, show_progress=not args.quiet)
    line = json.dumps(summary, sort_keys=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "launch_day.json").write_text(line + "\n")
    print(line)
    return 0


def run_live_cli(args: argparse.Namespace, scenario: Scenario) -> int:
    import asyncio

    try:
        from simulators.launch_day.live import live_config, run_live
    except ModuleNotFoundError as exc:
        if exc.name != "bench":
            raise
        # The live replay drives the chaos tooling in bench/, which ships with the
        # source tree, not the wheel.
        print(
            "launch-day --live: needs a source checkout (it uses bench/); "
            "run `make launch-day-live` there",
            file=sys.stderr,
        )
        return 2
    try:
        cfg = live_config(args, scenario)
    except ValueError as exc:
        print(f"launch-day --live: {exc}", file=sys.stderr)
        return 2
    result = asyncio.run(run_live(cfg))
    line = json.dumps(result, sort_keys=True)
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    (cfg.workdir / f"launch_day_live_{cfg.policy}.json").write_text(line + "\n")
    print(line, flush=True)
    return 0
