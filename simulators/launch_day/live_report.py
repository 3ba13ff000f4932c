"""Figures and the PNG of a live replay, next to the discrete-event model's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from regional_stack.pool.damping import DampingConfig
from regional_stack.pool.policies import (
    Bounds,
    BufferPolicy,
    Policy,
    PredictivePolicy,
    StaticPolicy,
)
from simulators.launch_day.engine import Result, simulate
from simulators.launch_day.report import day_figure, policy_figures, save_day_figure
from simulators.launch_day.scenario import Scenario, draw_arrivals, parallel_at, peak_parallel

if TYPE_CHECKING:
    from simulators.launch_day.live import LiveConfig, Tracker
    from simulators.launch_day.live_users import Recorder, User

PEAK_SHARE = 0.9  # "at the peak": where the curve is at least this share of its peak


@dataclass(frozen=True)
class Sample:
    t: float  # scenario seconds
    region: str
    sessions: int
    pool: int
    ready: int
    queue: int


def order_violations(users: list[User]) -> dict[str, int]:
    """Per region: pairs of queued users where the one whose create was answered
    before the other's was sent was assigned (by the server's clock) after it."""
    out: dict[str, int] = {}
    for region in sorted({u.region for u in users if u.region}):
        q = sorted(
            (u for u in users if u.queued and u.region == region and u.assigned_at_server),
            key=lambda u: u.sent,
        )
        answered = np.array([u.answered for u in q])
        sent = np.array([u.sent for u in q])
        at = np.array([u.assigned_at_server or 0.0 for u in q])
        bad = 0
        for i in range(len(q)):
            later = (sent > answered[i]) & (at < at[i] - 0.002)  # ms stamps: 2 ms slack
            bad += int(later.sum())
        out[region] = bad
    return out


def window_figures(r: Result, sc: Scenario, start_s: float, end_s: float) -> dict[str, Any]:
    """The model's figures over [start_s, end_s) only: users arriving in it, GPU and
    busy time from the pool manager ticks' series inside it."""
    arrivals = draw_arrivals(sc)
    mask = (arrivals.times >= start_s) & (arrivals.times < end_s)
    waits = r.waits[mask] if mask.any() else np.zeros(1)
    t = np.asarray(r.series.t)
    inside = (t >= start_s) & (t < end_s)
    gpu_h = float(np.asarray(r.series.pool)[inside].sum()) * sc.tick_s / 3600
    busy_h = float(np.asarray(r.series.sessions)[inside].sum()) * sc.tick_s / 3600
    return {
        "users_arrived": int(mask.sum()),
        "peak_parallel_sessions": int(np.asarray(r.series.sessions)[inside].max(initial=0)),
        "waited_over_30s_share": round(float(np.mean(waits > 30.0)), 5),
        "wait_p50_s": round(float(np.percentile(waits, 50)), 2),
        "wait_p99_s": round(float(np.percentile(waits, 99)), 2),
        "gpu_hours": round(gpu_h, 2),
        "idle_gpu_hours": round(gpu_h - busy_h, 2),
    }


def model_figures(cfg: LiveConfig) -> dict[str, Any]:
    """The discrete-event model on the same seed and the same stretch of the day, for
    the policy replayed and the static peak pool (the model is one region holding
    the whole demand; the live stack splits it over four)."""
    sc = cfg.scenario
    arrivals = draw_arrivals(sc)
    bounds = Bounds(minimum=2, maximum=sc.max_group_size)
    static_n = peak_parallel(arrivals, extra_s=sc.recycle_s)
    policies: dict[str, Policy] = {
        "static": StaticPolicy(count=static_n, bounds=bounds, name="static-peak"),
        "buffer": BufferPolicy(buffer_size=20, buffer_percent=10.0, bounds=bounds),
        "predictive": PredictivePolicy(margin=0.2, sigmas=2.0, min_buffer=3, bounds=bounds),
    }
    res = simulate(policies[cfg.policy], sc, arrivals, DampingConfig())
    base = simulate(policies["static"], sc, arrivals, DampingConfig())
    fig = window_figures(res, sc, cfg.start_s, cfg.end_s)
    base_idle = window_figures(base, sc, cfg.start_s, cfg.end_s)["idle_gpu_hours"]
    fig["static_peak_idle_gpu_hours"] = base_idle
    fig["idle_ratio_vs_static_peak"] = (
        round(fig["idle_gpu_hours"] / base_idle, 4) if base_idle else None
    )
    fig["whole_day"] = policy_figures(res)
    return fig


def figures(
    cfg: LiveConfig,
    users: list[User],
    rec: Recorder,
    tr: Tracker,
    paid_s: dict[str, float],
    static_count: int,
    unsettled: dict[str, int],
    wall_s: float,
) -> dict[str, Any]:
    waits = np.array([u.wait_s for u in users if u.wait_s is not None] or [0.0])
    served = [u for u in users if u.assigned_wall is not None]
    busy_s = sum(
        ((u.ended_wall or u.assigned_wall or 0.0) - (u.assigned_wall or 0.0)) * cfg.speed
        for u in served
    )
    gpu_h = sum(paid_s.values()) / 3600.0
    idle_h = gpu_h - busy_s / 3600.0
    span_h = (cfg.end_s - cfg.start_s) / 3600.0
    static_idle_h = static_count * span_h - busy_s / 3600.0
    peak_api = [ms for t, ms in rec.api_ms if _at_peak(cfg, t)]
    by_t: dict[float, int] = {}
    for s in tr.samples:
        by_t[s.t] = by_t.get(s.t, 0) + s.sessions
    violations = order_violations(users)
    return {
        "mode": "live",
        "policy": cfg.policy,
        "seed": cfg.scenario.seed,
        "speed": round(cfg.speed, 2),
        "scenario_hours": [round(cfg.start_s / 3600, 3), round(cfg.end_s / 3600, 3)],
        "users_arrived": len(users),
        "users_served": len(served),
        "users_queued": sum(1 for u in users if u.queued),
        "users_abandoned": sum(1 for u in users if u.abandoned),
        "users_refused": sum(1 for u in users if u.refused),
        "peak_parallel_sessions": max(by_t.values(), default=0),
        "waited_over_30s_share": round(float(np.mean(waits > 30.0)), 5),
        "wait_p50_s": round(float(np.percentile(waits, 50)), 2),
        "wait_p99_s": round(float(np.percentile(waits, 99)), 2),
        "queue_order_violations": violations,
        "queue_order_violations_total": sum(violations.values()),
        "double_bookings": len(rec.double_bookings),
        "sessions_lost": sum(1 for u in users if u.lost),
        "lost_reasons": sorted({u.lost for u in users if u.lost})[:5],
        "gpu_hours": round(gpu_h, 2),
        "idle_gpu_hours": round(idle_h, 2),
        "static_peak_pool": static_count,
        "static_peak_idle_gpu_hours": round(static_idle_h, 2),
        "idle_ratio_vs_static_peak": round(idle_h / static_idle_h, 4)
        if static_idle_h > 0
        else None,
        "session_api_p99_ms_at_peak": round(float(np.percentile(peak_api, 99)), 1)
        if peak_api
        else None,
        "session_api_p99_ms": round(float(np.percentile([m for _, m in rec.api_ms], 99)), 1)
        if rec.api_ms
        else None,
        "first_frame_ms": None,  # the real-media sample is not built (docs/pools.md)
        "connect": "router" if cfg.via_router else "agent-api-in-process",
        "signalling_connect_ms_p50_p99": [
            round(float(np.percentile(rec.connect_ms, q)), 1) for q in (50, 99)
        ]
        if rec.connect_ms
        else None,
        "faults": [
            {"name": n, "from_h": round(a / 3600, 3), "to_h": round(b / 3600, 3)}
            for a, b, n in tr.faults
        ],
        "fault_notes": tr.notes,
        "fault_errors": tr.fault_errors,
        "instances_not_returned": unsettled,
        "wall_s": round(wall_s, 1),
        "model": model_figures(cfg),
    }


def _at_peak(cfg: LiveConfig, t: float) -> bool:
    sc = cfg.scenario
    return parallel_at(sc, t) >= PEAK_SHARE * sc.peak_parallel


def plot(
    samples: list[Sample], faults: list[tuple[float, float, str]], path: Path, policy: str
) -> None:
    regions = sorted({s.region for s in samples})
    fig, axes_list = day_figure(max(1, len(regions)))
    for ax, region in zip(axes_list, regions, strict=False):
        mine = [s for s in samples if s.region == region]
        hours = [s.t / 3600 for s in mine]
        ax.plot(hours, [s.sessions for s in mine], label="sessions (demand served)", lw=1.0)
        ax.plot(hours, [s.pool for s in mine], label="pool (group size)", lw=1.0)
        ax.plot(hours, [s.ready for s in mine], label="hot idle", lw=0.8, alpha=0.8)
        ax.plot(hours, [s.queue for s in mine], label="queue", lw=1.0, color="red")
        for a, b, name in faults:
            ax.axvspan(a / 3600, max(b, a + 60) / 3600, color="grey", alpha=0.25)
            ax.text(a / 3600, 0, name, fontsize=7, rotation=90, va="bottom")
        ax.set_title(f"{region} ({policy}, live)", loc="left", fontsize=10)
        ax.set_ylabel("instances")
        ax.grid(alpha=0.3)
    save_day_figure(fig, axes_list, path)
