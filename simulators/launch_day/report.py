"""Figures per policy, the choice of the best one, and the PNG of the day."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simulators.launch_day.engine import Result

WAIT_GOAL_30S_SHARE = 0.01  # at most 1% of users may wait more than 30 s
BASELINE = "static-peak"


def policy_figures(r: Result) -> dict[str, Any]:
    waits = r.waits if len(r.waits) else np.zeros(1)
    gpu_h = r.gpu_seconds / 3600.0
    busy_h = r.busy_seconds / 3600.0
    return {
        "gpu_hours": round(gpu_h, 2),
        "idle_gpu_hours": round(gpu_h - busy_h, 2),
        "busy_gpu_hours": round(busy_h, 2),
        "users_arrived": r.arrived,
        "users_served": r.served,
        "users_abandoned": r.abandoned,
        "wait_p50_s": round(float(np.percentile(waits, 50)), 2),
        "wait_p95_s": round(float(np.percentile(waits, 95)), 2),
        "wait_p99_s": round(float(np.percentile(waits, 99)), 2),
        "waited_over_10s_share": round(float(np.mean(waits > 10.0)), 5),
        "waited_over_30s_share": round(float(np.mean(waits > 30.0)), 5),
        "peak_parallel_sessions": r.peak_sessions,
        "launches_warm": r.launches_warm,
        "launches_cold": r.launches_cold,
        "capacity_errors": r.capacity_errors,
    }


def summarize(results: list[Result], extra: dict[str, Any]) -> dict[str, Any]:
    policies = {r.policy: policy_figures(r) for r in results}
    baseline_idle = policies[BASELINE]["idle_gpu_hours"] if BASELINE in policies else None
    candidates = [name for name in policies if name != BASELINE]
    meeting = [n for n in candidates if policies[n]["waited_over_30s_share"] <= WAIT_GOAL_30S_SHARE]
    if meeting:
        best = min(meeting, key=lambda n: policies[n]["idle_gpu_hours"])
    elif candidates:
        best = min(candidates, key=lambda n: policies[n]["waited_over_30s_share"])
    else:
        best = BASELINE
    for figures in policies.values():
        figures["idle_ratio_vs_static_peak"] = (
            round(figures["idle_gpu_hours"] / baseline_idle, 4) if baseline_idle else None
        )
    chosen = policies[best]
    ratio = chosen["idle_ratio_vs_static_peak"]
    return {
        "policies": policies,
        "best_policy": best,
        "idle_ratio_vs_static_peak": ratio,
        "waited_over_30s_share": chosen["waited_over_30s_share"],
        "goal": {
            "idle_ratio_max": 0.6,
            "waited_over_30s_share_max": WAIT_GOAL_30S_SHARE,
            "met": ratio is not None
            and ratio <= 0.6
            and chosen["waited_over_30s_share"] <= WAIT_GOAL_30S_SHARE,
        },
        **extra,
    }


def day_figure(panels: int) -> tuple[Any, list[Any]]:
    """A figure of `panels` stacked panels over the hours of the day (the model's
    and the live replay's PNGs share the look)."""
    import matplotlib

    matplotlib.use("Agg")  # no display here; select before pyplot is imported
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(panels, 1, figsize=(12, 2.6 * panels), sharex=True)
    return fig, list(np.atleast_1d(axes))


def save_day_figure(fig: Any, axes_list: list[Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    axes_list[0].legend(loc="upper left", fontsize=8, ncol=4)
    axes_list[-1].set_xlabel("hour of launch day")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot(results: list[Result], path: Path) -> None:
    fig, axes_list = day_figure(len(results))
    for ax, r in zip(axes_list, results, strict=True):
        hours = np.asarray(r.series.t) / 3600.0
        ax.plot(hours, r.series.sessions, label="sessions (demand served)", lw=1.0)
        ax.plot(hours, r.series.pool, label="pool (hot + booting)", lw=1.0)
        ax.plot(hours, r.series.ready, label="hot idle", lw=0.8, alpha=0.8)
        ax.plot(hours, r.series.queue, label="queue", lw=1.0, color="red")
        ax.set_title(r.policy, loc="left", fontsize=10)
        ax.set_ylabel("instances")
        ax.grid(alpha=0.3)
    save_day_figure(fig, axes_list, path)
