"""How long a queued user waits: their position over the observed service rate.

The old estimate assumed every session lasts a fixed average (300 s) and
divided by the region's capacity; with short demo sessions it said "about
8 min" for a 20 s wait. Here the rate is measured: how many queue heads the
regions a session waits in actually served in a recent window. Pure: the
Redis side is control_plane/served_log.py.
"""

from __future__ import annotations

from dataclasses import dataclass

# Fewer serves than this in the window say nothing about a rate: fall back.
MIN_SERVED = 2
# Serves closer together than this still count as spread over this long, so
# two heads served in one dispatch do not claim an unbounded rate.
MIN_SPAN_S = 1.0


@dataclass(frozen=True)
class ServedWindow:
    """Queue heads served in the last `window_s` seconds, in the regions asked about."""

    count: int
    oldest_age_s: float | None  # how long ago the oldest of them was served

    @classmethod
    def merge(cls, windows: list[ServedWindow]) -> ServedWindow:
        ages = [w.oldest_age_s for w in windows if w.oldest_age_s is not None]
        return cls(sum(w.count for w in windows), max(ages) if ages else None)


def service_rate_per_s(window: ServedWindow) -> float | None:
    """Serves per second, or None when the window holds too few to tell.

    n serves observed since the oldest of them is n - 1 gaps over its age: the
    usual inter-arrival estimate. Measured to *now*, not to the newest serve, so
    a queue that stopped moving shows a falling rate, not the last good one.
    """
    if window.count < MIN_SERVED or window.oldest_age_s is None:
        return None
    return (window.count - 1) / max(window.oldest_age_s, MIN_SPAN_S)


def estimate_wait_s(
    position: int, rate_per_s: float | None, capacity: int, fallback_session_s: float
) -> int:
    """Seconds until `position` (1-based) is served.

    With a measured rate: position / rate. Without one (a queue that just
    formed), the capacity-based guess: `capacity` instances each freeing every
    `fallback_session_s`.
    """
    if position <= 0:
        return 0
    if rate_per_s is not None and rate_per_s > 0:
        return round(position / rate_per_s)
    return round(position * fallback_session_s / max(1, capacity))
