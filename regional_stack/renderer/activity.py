"""When the renderer tells the agent about input: `streamfleetInput`, at most once per period.

The agent cannot see the data channel, so the renderer reports that input
arrived (docs/pixel-streaming.md, "streamfleet extension"). The first input
after a quiet spell is reported at once; inputs within a period of the last
report are counted and reported together when the period ends. Pure: the
caller passes the clock and arms the timer `record` asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PERIOD_S = 1.0


@dataclass
class InputReports:
    period_s: float = PERIOD_S
    pending: int = 0
    last_sent: float | None = None
    timer_armed: bool = False

    def record(self, now: float) -> tuple[int | None, float | None]:
        """One input arrived: (count to send now, or None; seconds until `flush`, or None)."""
        self.pending += 1
        if self.timer_armed:
            return None, None
        if self.last_sent is None or now - self.last_sent >= self.period_s:
            return self._take(now), None
        self.timer_armed = True
        return None, self.last_sent + self.period_s - now

    def flush(self, now: float) -> int | None:
        """The timer `record` asked for fired: the count to send, if any."""
        self.timer_armed = False
        return self._take(now) if self.pending else None

    def _take(self, now: float) -> int:
        count, self.pending, self.last_sent = self.pending, 0, now
        return count


def message(count: int) -> dict[str, Any]:
    return {"type": "streamfleetInput", "count": count}
