"""Drive a control plane through a Redis fault: bounded load, readiness polling, tallies."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.fixtures.control_plane import ControlPlane

EU = "eu-central-1"
_client_ids = itertools.count()


def fresh_client() -> str:
    return f"ha-{next(_client_ids)}"


async def serving(cp: ControlPlane) -> bool:
    """One create and /healthz answer normally."""
    try:
        status, _ = await cp.create(fresh_client())
        health, _, _ = await cp.call("GET", "/healthz")
    except (TimeoutError, OSError):
        return False
    return status in (201, 202) and health == 200


async def until_serving(cp: ControlPlane, since: float, bound_s: float) -> float:
    """Poll until the service answers normally; seconds from `since` (monotonic).
    Fails when that takes longer than `bound_s`."""
    async with asyncio.timeout(bound_s + 10):
        while not await serving(cp):
            await asyncio.sleep(0.05)
    took = time.monotonic() - since
    assert took <= bound_s, f"service normal only {took:.1f} s after the fault (bound {bound_s})"
    return took


@dataclass
class Load:
    """Creates and reads, one after another, until stopped (bounded in count and time)."""

    cp: ControlPlane
    known: list[tuple[str, str]]  # (session id, secret) to read
    answers: list[tuple[float, str, int]] = field(default_factory=list)  # (start, what, status)
    created: list[tuple[float, str, str]] = field(default_factory=list)  # (start, id, secret)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, max_calls: int = 2000, max_s: float = 40.0) -> None:
        deadline = time.monotonic() + max_s
        for i in range(max_calls):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            start = time.monotonic()
            if i % 2:
                sid, secret = self.known[i % len(self.known)]
                status, _, _ = await self.cp.call("GET", f"/v1/sessions/{sid}", token=secret)
                self.answers.append((start, "read", status))
            else:
                status, body = await self.cp.create(fresh_client())
                self.answers.append((start, "create", status))
                if status in (201, 202):
                    self.created.append((start, body["session_id"], body["session_secret"]))
            await asyncio.sleep(0.01)  # pacing, not waiting for a state

    def after(self, t: float) -> Counter[int]:
        return Counter(s for start, _, s in self.answers if start >= t)


async def burst(cp: ControlPlane, n: int) -> Counter[int]:
    """n creates at once (fills the Redis connection pool)."""
    results = await asyncio.gather(*(cp.create(fresh_client()) for _ in range(n)))
    return Counter(status for status, _ in results)


async def some_sessions(cp: ControlPlane, n: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        status, body = await cp.create(fresh_client())
        assert status in (201, 202), body
        out.append((body["session_id"], body["session_secret"]))
    return out
