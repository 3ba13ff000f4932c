"""Pool sizing policies: pure functions from a demand snapshot to a target size.

The target is the number of instances the region's group should hold: the ones
serving (reserved, streaming, recycling), the ones queued users need, and the
idle hot buffer that lets the next user start without waiting for a boot.
Every policy clamps to its own [minimum, maximum] and says when it had to
(``limited``), as Agones' ``applyBufferPolicy`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DemandSnapshot:
    """What a policy may look at. Times are seconds on one clock (unix or simulated)."""

    now: float
    in_use: int  # reserved + streaming + recycling: occupied instances
    ready: int = 0  # hot and idle
    provisioning: int = 0  # asked for, not ready yet (provisioning + booting)
    queue: int = 0  # users waiting for this region
    # Session creations per minute, oldest first, the current (partial) minute last.
    arrivals_per_min: tuple[int, ...] = ()
    lead_time_s: float = 300.0  # measured or configured time from "launch" to "ready"

    @property
    def demand(self) -> int:
        """Instances needed right now: those in use plus one per queued user."""
        return self.in_use + self.queue


@dataclass(frozen=True)
class PoolTarget:
    target: int
    limited: bool
    reason: str


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, snap: DemandSnapshot) -> PoolTarget: ...


@dataclass(frozen=True)
class Bounds:
    minimum: int = 0
    maximum: int = 10_000

    def __post_init__(self) -> None:
        if not 0 <= self.minimum <= self.maximum:
            raise ValueError(f"bounds need 0 <= minimum <= maximum, got {self}")

    def clamp(self, value: int, reason: str) -> PoolTarget:
        if value < self.minimum:
            return PoolTarget(self.minimum, True, f"{reason}; raised to minimum {self.minimum}")
        if value > self.maximum:
            return PoolTarget(self.maximum, True, f"{reason}; capped at maximum {self.maximum}")
        return PoolTarget(value, False, reason)


@dataclass(frozen=True)
class StaticPolicy:
    """A fixed pool size, e.g. sized by hand for the expected peak."""

    count: int
    bounds: Bounds = Bounds()
    name: str = "static"

    def __call__(self, snap: DemandSnapshot) -> PoolTarget:
        return self.bounds.clamp(self.count, f"static {self.count}")


@dataclass(frozen=True)
class BufferPolicy:
    """Demand plus a buffer: the larger of ``buffer_size`` and ``buffer_percent`` of demand."""

    buffer_size: int = 0
    buffer_percent: float = 0.0
    bounds: Bounds = Bounds()
    name: str = "buffer"

    def __post_init__(self) -> None:
        if self.buffer_size < 0 or not 0.0 <= self.buffer_percent <= 1000.0:
            raise ValueError(f"buffer must be >= 0 and percent in [0, 1000]: {self}")

    def __call__(self, snap: DemandSnapshot) -> PoolTarget:
        extra = max(self.buffer_size, math.ceil(snap.demand * self.buffer_percent / 100.0))
        return self.bounds.clamp(snap.demand + extra, f"demand {snap.demand} + buffer {extra}")


@dataclass(frozen=True)
class Window:
    """From ``start`` to ``end`` (same clock as the snapshot) keep ``min_hot`` instances."""

    start: float
    end: float
    min_hot: int


@dataclass(frozen=True)
class SchedulePolicy:
    """Announced launches: a floor during time windows, demand outside them.

    A window is applied from ``start - lead_time`` so the pool is hot when the
    window opens, not a boot later.
    """

    windows: tuple[Window, ...]
    bounds: Bounds = Bounds()
    name: str = "schedule"

    def __call__(self, snap: DemandSnapshot) -> PoolTarget:
        active = [w for w in self.windows if w.start - snap.lead_time_s <= snap.now < w.end]
        floor = max((w.min_hot for w in active), default=0)
        if floor > snap.demand:
            return self.bounds.clamp(floor, f"schedule window floor {floor}")
        return self.bounds.clamp(snap.demand, f"demand {snap.demand}")


@dataclass(frozen=True)
class PredictivePolicy:
    """Hold enough idle instances to absorb the arrivals expected within one lead time.

    Little's law: instances that must already be hot (or on their way) = arrival
    rate x provisioning lead time. The rate is forecast from recent minutes: a
    level (mean of the last ``level_minutes``) and a trend (least-squares slope
    over ``trend_minutes``), integrated over the lead time. The safety margin is
    proportional (``margin``) plus ``sigmas`` Poisson standard deviations plus a
    fixed ``min_buffer``.
    """

    margin: float = 0.2
    sigmas: float = 2.0
    min_buffer: int = 2
    level_minutes: int = 3
    trend_minutes: int = 6
    bounds: Bounds = Bounds()
    name: str = "predictive"

    def expected_arrivals(self, snap: DemandSnapshot) -> float:
        """Arrivals expected within the next lead time (never negative)."""
        rates = _per_minute_rates(snap)
        if not rates:
            return 0.0
        level = sum(rates[-self.level_minutes :]) / len(rates[-self.level_minutes :])
        slope = _slope(rates[-self.trend_minutes :])  # arrivals/min per minute
        horizon_min = snap.lead_time_s / 60.0
        # Only a rising trend is extrapolated: on a falling one we keep the level,
        # since scaling in too early costs waits and scaling in late costs little.
        rising = max(slope, 0.0)
        return max(0.0, level * horizon_min + 0.5 * rising * horizon_min**2)

    def __call__(self, snap: DemandSnapshot) -> PoolTarget:
        arrivals = self.expected_arrivals(snap)
        cover = arrivals * (1.0 + self.margin) + self.sigmas * math.sqrt(arrivals)
        extra = self.min_buffer + math.ceil(cover)
        return self.bounds.clamp(
            snap.demand + extra,
            f"demand {snap.demand} + forecast {arrivals:.1f} arrivals in "
            f"{snap.lead_time_s:.0f}s -> buffer {extra}",
        )


@dataclass(frozen=True)
class MaxPolicy:
    """Composition: the largest target of several policies, then its own clamp."""

    policies: tuple[Policy, ...]
    bounds: Bounds = Bounds()
    name: str = "composed"

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("a composed policy needs at least one policy")

    def __call__(self, snap: DemandSnapshot) -> PoolTarget:
        results = [(p.name, p(snap)) for p in self.policies]
        name, best = max(results, key=lambda r: r[1].target)
        clamped = self.bounds.clamp(best.target, f"{name}: {best.reason}")
        return PoolTarget(clamped.target, clamped.limited or best.limited, clamped.reason)


def _per_minute_rates(snap: DemandSnapshot) -> list[float]:
    """Arrivals per minute; the partial current minute is scaled up once 15 s have passed."""
    history = [float(n) for n in snap.arrivals_per_min]
    if not history:
        return []
    elapsed = snap.now % 60.0
    current = history.pop()
    if elapsed >= 15.0:
        history.append(current * 60.0 / elapsed)
    elif not history:
        history.append(current)
    return history


def _slope(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2.0
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den
