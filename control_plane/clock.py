"""Where the broker's time comes from.

In service, Redis' own TIME (inside each script) is the one clock, so no two
machines' wall clocks are ever compared. Tests inject a ManualClock and move
it forward explicitly.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now_arg(self) -> str:
        """The `now` ARGV for a script: milliseconds, or '' for Redis TIME."""


class RedisClock:
    def now_arg(self) -> str:
        return ""


class ManualClock:
    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def now_arg(self) -> str:
        return str(self.ms)

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
