"""Provisioning lead time: configured until enough launches have been measured.

A policy that covers "arrivals during the lead time" is only as good as that
lead time, so the pool manager (and the simulator) record how long each launch
took to become `ready` and size with a high quantile of the recent samples.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class LeadTimeTracker:
    configured_s: float
    window: int = 50
    min_samples: int = 3
    quantile: float = 0.75
    samples: deque[float] = field(default_factory=deque)

    def record(self, seconds: float) -> None:
        if seconds < 0:
            return
        self.samples.append(seconds)
        while len(self.samples) > self.window:
            self.samples.popleft()

    def estimate(self) -> float:
        if len(self.samples) < self.min_samples:
            return self.configured_s
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))]
