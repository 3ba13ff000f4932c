"""The launch-day simulator: deterministic for a seed, and it drives the real policies."""

from __future__ import annotations

from regional_stack.pool.damping import DampingConfig
from simulators.launch_day.run import run_all
from simulators.launch_day.scenario import Scenario, draw_arrivals, peak_parallel

# A two-hour launch: quiet, a ramp to the peak at 0:30, a plateau, a decline.
SHORT = Scenario(
    seed=3,
    day_s=2 * 3600.0,
    peak_parallel=60,
    curve=((0.0, 0.05), (0.45, 0.05), (0.75, 1.0), (1.5, 1.0), (2.0, 0.1)),
    launch_at_s=0.5 * 3600.0,
    max_group_size=100,
    warm_max_prepared=100,
)


def test_same_seed_same_summary() -> None:
    first = run_all(SHORT, DampingConfig(), None, show_progress=False)
    second = run_all(SHORT, DampingConfig(), None, show_progress=False)
    first.pop("wall_s")
    second.pop("wall_s")
    assert first == second
    assert set(first["policies"]) == {"static-peak", "buffer", "schedule", "predictive", "composed"}


def test_other_seed_other_day() -> None:
    other = Scenario(**{**SHORT.__dict__, "seed": 4})
    assert len(draw_arrivals(SHORT).times) != len(draw_arrivals(other).times)


def test_figures_are_consistent() -> None:
    summary = run_all(SHORT, DampingConfig(), None, show_progress=False)
    arrivals = draw_arrivals(SHORT)
    assert peak_parallel(arrivals) <= SHORT.peak_parallel
    for name, fig in summary["policies"].items():
        assert fig["users_arrived"] == len(arrivals.times), name
        assert fig["users_served"] + fig["users_abandoned"] <= fig["users_arrived"]
        assert 0 <= fig["idle_gpu_hours"] <= fig["gpu_hours"], name
        assert fig["wait_p50_s"] <= fig["wait_p95_s"] <= fig["wait_p99_s"], name
        assert fig["waited_over_30s_share"] <= fig["waited_over_10s_share"], name
    static = summary["policies"]["static-peak"]
    # Sized for the peak and hot all day: nobody waits, and it is the costliest.
    assert static["waited_over_30s_share"] == 0.0
    assert all(static["gpu_hours"] >= f["gpu_hours"] for f in summary["policies"].values())
    assert summary["best_policy"] != "static-peak"
