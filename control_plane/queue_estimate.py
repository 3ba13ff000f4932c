"""How long a queued user waits: their position over the observed service rate.

The old estimate assumed every session lasts a fixed average (300 s) and
divided by the region's capacity; with short demo sessions it said "about
8 min" for a 20 s wait. Here the rate is measured: how many queue heads the
regions a session waits in actually served in a recent window. Pure: the
Redis side is control_plane/served_log.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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
    newest_age_s: float | None  # ... and the newest

    @classmethod
    def merge(cls, windows: list[ServedWindow]) -> ServedWindow:
        oldest = [w.oldest_age_s for w in windows if w.oldest_age_s is not None]
        newest = [w.newest_age_s for w in windows if w.newest_age_s is not None]
        return cls(
            sum(w.count for w in windows),
            max(oldest) if oldest else None,
            min(newest) if newest else None,
        )


def service_rate_per_s(window: ServedWindow) -> float | None:
    """Serves per second, or None when the window holds too few to tell.

    n serves from the oldest to the newest are n - 1 gaps over that span: the
    usual inter-arrival estimate, whatever the moment it is read. A queue that
    stopped moving must not keep its last good rate: time since the newest
    serve beyond one typical gap counts as a gap still running, so the rate
    falls the longer nothing is served.
    """
    oldest, newest = window.oldest_age_s, window.newest_age_s
    if window.count < MIN_SERVED or oldest is None or newest is None:
        return None
    span = max(oldest - newest, MIN_SPAN_S)
    gap = span / (window.count - 1)
    stalled = max(0.0, newest - gap)
    return (window.count - 1) / (span + stalled)


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


# Instance states that will serve someone soon: the capacity a queue drains into.
SERVING_SOON = frozenset({"ready", "reserved", "streaming", "recycling", "booting"})


def serving_soon(counts: dict[str, int]) -> int:
    """Instances (by state, as the region's counters say) a queue drains into."""
    return sum(n for state, n in counts.items() if state in SERVING_SOON)


def window_from_scores(
    count: int, oldest_ms: float | None, newest_ms: float | None, now_ms: float
) -> ServedWindow:
    """The window from the served log's scores (ms) as read at `now_ms`."""
    if not count or oldest_ms is None or newest_ms is None:
        return ServedWindow(0, None, None)

    def age(score: float) -> float:
        return max(0.0, (now_ms - score) / 1000)

    return ServedWindow(count, age(oldest_ms), age(newest_ms))


class Standing(NamedTuple):
    """Where a waiting session stands: what its queued view shows."""

    position: int  # 1-based, its best over the queues it waits in; 0 when in none
    estimated_wait_s: int


def standing(
    ranks: list[int | None], capacity: int, windows: list[ServedWindow], fallback_session_s: float
) -> Standing:
    """A waiting session's 1-based position (its best over the queues it waits in;
    0 when in none) and estimated wait, from its 0-based rank in each queue, the
    capacity of those regions and their served windows."""
    present = [r for r in ranks if r is not None]
    position = min(present) + 1 if present else 0
    rate = service_rate_per_s(ServedWindow.merge(windows))
    return Standing(position, estimate_wait_s(position, rate, capacity, fallback_session_s))
