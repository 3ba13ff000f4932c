"""`streamfleet simulate launch-day`: compare pool policies over a simulated launch day.

Progress goes to stderr; the last line of stdout is the JSON summary, which is
also written next to the PNG plot.
"""

from __future__ import annotations

import argparse
import json
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
    summary = run_all(scenario, DampingConfig(), args.out, show_progress=not args.quiet)
    line = json.dumps(summary, sort_keys=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "launch_day.json").write_text(line + "\n")
    print(line)
    return 0
