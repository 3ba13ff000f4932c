"""The launch day: demand curve, arrivals and session lengths, drawn once per seed.

Every policy is simulated against the same arrivals (common random numbers),
so differences between policies are the policies', not the dice's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# (hour of day, share of peak parallel sessions), linear in between: a quiet night,
# a morning of teasers, the announced launch at 10:00 ramping to the peak in 20
# minutes, a long plateau, an afternoon decline, an evening bump, the night.
DEFAULT_CURVE: tuple[tuple[float, float], ...] = (
    (0.0, 0.02),
    (7.0, 0.02),
    (9.95, 0.12),
    (10.0, 0.12),
    (10.33, 1.0),
    (12.5, 1.0),
    (15.0, 0.55),
    (18.0, 0.4),
    (19.5, 0.5),
    (21.0, 0.45),
    (24.0, 0.03),
)


@dataclass(frozen=True)
class Scenario:
    seed: int = 7
    day_s: float = 86_400.0
    peak_parallel: int = 500
    curve: tuple[tuple[float, float], ...] = DEFAULT_CURVE
    launch_at_s: float = 10 * 3600.0  # the announced launch, for the schedule policy
    session_distribution: str = "lognormal"  # lognormal | exponential | fixed
    mean_session_s: float = 720.0
    session_sigma: float = 0.8  # lognormal shape
    max_session_s: float = 3600.0
    cold_lead_s: float = 300.0  # cold launch to renderer ready
    warm_lead_s: float = 75.0  # start a stopped warm-pool instance to renderer ready
    lead_jitter: float = 0.2  # +/- uniform share of the lead time
    warm_pool: bool = True
    warm_max_prepared: int = 600  # AWS default: the group's max size
    recycle_s: float = 20.0
    capacity_error_rate: float = 0.03  # share of launch requests failing with ICE
    tick_s: float = 15.0  # pool manager interval
    queue_timeout_s: float = 600.0
    max_group_size: int = 600


@dataclass(frozen=True)
class Arrivals:
    times: npt.NDArray[np.float64]  # sorted, seconds since midnight
    durations: npt.NDArray[np.float64]


def parallel_at(scenario: Scenario, t: float) -> float:
    hours = [h * 3600.0 for h, _ in scenario.curve]
    shares = [s for _, s in scenario.curve]
    return float(np.interp(t, hours, shares)) * scenario.peak_parallel


def arrival_rate(scenario: Scenario, t: float, dt: float = 60.0) -> float:
    """Arrivals per second that make the parallel sessions follow the curve.

    In steady state parallel = rate x mean length (Little); while the curve rises
    the extra sessions must arrive on top: rate = P/mean + dP/dt.
    """
    p = parallel_at(scenario, t)
    slope = (parallel_at(scenario, t + dt) - parallel_at(scenario, t - dt)) / (2 * dt)
    return max(0.0, p / scenario.mean_session_s + slope)


def draw_arrivals(scenario: Scenario, bin_s: float = 10.0) -> Arrivals:
    rng = np.random.default_rng([scenario.seed, 0])
    starts = np.arange(0.0, scenario.day_s, bin_s)
    rates = np.array([arrival_rate(scenario, s + bin_s / 2) for s in starts])
    counts = rng.poisson(rates * bin_s)
    times = np.repeat(starts, counts) + rng.uniform(0.0, bin_s, int(counts.sum()))
    times.sort()
    durations = draw_durations(scenario, rng, len(times))
    # Random session lengths and Poisson noise push the peak above the curve's;
    # thin the arrivals uniformly (still Poisson) so the day peaks at the stated
    # number of parallel sessions.
    observed = peak_parallel(Arrivals(times, durations))
    if observed > scenario.peak_parallel:
        keep = rng.random(len(times)) < scenario.peak_parallel / observed
        times, durations = times[keep], durations[keep]
    return Arrivals(times=times, durations=durations)


def peak_parallel(arrivals: Arrivals, extra_s: float = 0.0) -> int:
    """Most sessions in progress at once (each held ``extra_s`` longer, e.g. recycling)."""
    n = len(arrivals.times)
    if n == 0:
        return 0
    times = np.concatenate([arrivals.times, arrivals.times + arrivals.durations + extra_s])
    steps = np.concatenate([np.ones(n), -np.ones(n)])
    order = np.lexsort((steps, times))  # at equal times an end comes before a start
    return int(np.cumsum(steps[order]).max())


def draw_durations(scenario: Scenario, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    mean = scenario.mean_session_s
    if scenario.session_distribution == "fixed":
        out = np.full(n, mean)
    elif scenario.session_distribution == "exponential":
        out = rng.exponential(mean, n)
    elif scenario.session_distribution == "lognormal":
        sigma = scenario.session_sigma
        out = rng.lognormal(np.log(mean) - sigma**2 / 2, sigma, n)
    else:
        raise ValueError(f"unknown session distribution {scenario.session_distribution!r}")
    clipped: npt.NDArray[np.float64] = np.clip(out, 30.0, scenario.max_session_s)
    return clipped
