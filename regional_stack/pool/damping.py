"""Cooldowns and hysteresis between a policy's target and the group's desired size.

Scale-out is immediate (a waiting user costs more than an idle GPU-minute);
scale-in waits for a cooldown after the last change and only happens when the
surplus exceeds a band, so a target that wobbles by one or two never flaps the
group. Pure: the pool manager and the simulator share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DampingConfig:
    scale_out_cooldown_s: float = 0.0
    scale_in_cooldown_s: float = 300.0  # after any scale-out or scale-in
    hysteresis: int = 2  # surplus (instances) tolerated before scaling in
    hysteresis_percent: float = 5.0  # ... or this share of the current size, if larger
    max_scale_in_step: int = 50  # at most this many instances per scale-in


@dataclass(frozen=True)
class DampingState:
    last_scale_out: float = -math.inf
    last_scale_in: float = -math.inf


@dataclass(frozen=True)
class Decision:
    desired: int
    state: DampingState
    reason: str


def damp(
    current: int, target: int, now: float, state: DampingState, cfg: DampingConfig
) -> Decision:
    """The size to apply now, given the current size and the policy's target."""
    if target > current:
        if now - state.last_scale_out < cfg.scale_out_cooldown_s:
            return Decision(current, state, "scale-out cooldown")
        return Decision(
            target, DampingState(now, state.last_scale_in), f"scale out {current}->{target}"
        )
    surplus = current - target
    band = max(cfg.hysteresis, math.ceil(current * cfg.hysteresis_percent / 100.0))
    if surplus <= band:
        return Decision(current, state, "within hysteresis band" if surplus else "steady")
    last_change = max(state.last_scale_out, state.last_scale_in)
    if now - last_change < cfg.scale_in_cooldown_s:
        return Decision(current, state, "scale-in cooldown")
    desired = max(target, current - cfg.max_scale_in_step)
    return Decision(
        desired, DampingState(state.last_scale_out, now), f"scale in {current}->{desired}"
    )
