"""Run every policy through one launch day and write the summary (and the plot)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from regional_stack.pool.damping import DampingConfig
from regional_stack.pool.policies import (
    Bounds,
    BufferPolicy,
    MaxPolicy,
    Policy,
    PredictivePolicy,
    SchedulePolicy,
    StaticPolicy,
    Window,
)
from simulators.launch_day.engine import Result, simulate
from simulators.launch_day.report import plot, summarize
from simulators.launch_day.scenario import Scenario, draw_arrivals, peak_parallel


def default_policies(sc: Scenario, static_count: int) -> list[Policy]:
    """The policies compared; ``static-peak`` is the baseline sized by hand for the peak."""
    bounds = Bounds(minimum=2, maximum=sc.max_group_size)
    # The launch is announced: hold the peak from the launch until the plateau ends.
    launch = Window(start=sc.launch_at_s, end=sc.launch_at_s + 2.5 * 3600, min_hot=sc.peak_parallel)
    schedule = SchedulePolicy(windows=(launch,), bounds=bounds)
    predictive = PredictivePolicy(margin=0.2, sigmas=2.0, min_buffer=3, bounds=bounds)
    # The schedule only needs to carry the first minutes of the launch, until the
    # predictive forecast has seen the ramp: a short window, not the whole plateau.
    ramp = Window(start=sc.launch_at_s, end=sc.launch_at_s + 1800, min_hot=sc.peak_parallel // 2)
    return [
        StaticPolicy(count=static_count, bounds=bounds, name="static-peak"),
        BufferPolicy(buffer_size=20, buffer_percent=10.0, bounds=bounds),
        schedule,
        predictive,
        MaxPolicy(
            policies=(predictive, SchedulePolicy(windows=(ramp,), bounds=bounds)),
            bounds=bounds,
        ),
    ]


def run_all(
    sc: Scenario,
    damping: DampingConfig,
    out_dir: Path | None,
    show_progress: bool = True,
) -> dict[str, Any]:
    started = time.monotonic()
    arrivals = draw_arrivals(sc)
    # Sized for the peak as a person with hindsight would: every session of the
    # peak minute plus the instances still recycling after one.
    static_count = peak_parallel(arrivals, extra_s=sc.recycle_s)
    results: list[Result] = []
    for policy in default_policies(sc, static_count):

        def progress(share: float, name: str = policy.name) -> None:
            if show_progress:
                print(f"\r{name:<12} {share * 100:5.1f}% of the day", end="", file=sys.stderr)

        results.append(simulate(policy, sc, arrivals, damping, progress))
        if show_progress:
            print(f"\r{policy.name:<12} done{' ' * 20}", file=sys.stderr)
    extra: dict[str, Any] = {
        "scenario": {k: v for k, v in asdict(sc).items() if k != "curve"},
        "peak_parallel_sessions": peak_parallel(arrivals),
        "static_peak_pool": static_count,
        "wall_s": round(time.monotonic() - started, 2),
    }
    if out_dir is not None:
        png = out_dir / "launch_day.png"
        plot(results, png)
        extra["png"] = str(png)
        extra["json"] = str(out_dir / "launch_day.json")
    return summarize(results, extra)
