"""Waiting clients' event streams: what N of them cost one control-plane process.

Every waiting client's page holds the session's event stream open to see its
place in line. Creates N sessions with no instance ready (all wait in one
region), opens N event streams, and measures over a window, against the same
process with no stream open measured in the same run (the baseline):

- idle: the queue does not move;
- moving: the head of the line leaves every tick, so every stream's position
  changes: the queue feed (control_plane/api/queue_feed.py) reads the queue each
  tick and every stream is written an event (the heaviest case).

Per phase: control-plane and Redis CPU (% of one core), Redis calls a second
(INFO commandstats, every command a script ran included), and events written to
the streams; and what the streams add per stream over the baseline.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from harness import CpuWindow, attested_stack, log, run
from redis_calls import commands_run


class Streams:
    """N event streams, counting the session events they receive."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.events = 0
        self.tasks: list[asyncio.Task[None]] = []
        self._event = asyncio.Event()

    async def until(self, events: int) -> None:
        while self.events < events:
            self._event.clear()
            await self._event.wait()

    def open(self, sid: str, secret: str) -> None:
        self.tasks.append(asyncio.create_task(self._read(sid, secret)))

    async def _read(self, sid: str, secret: str) -> None:
        async with self.http.get(
            f"{self.url}/v1/sessions/{sid}/events", params={"secret": secret}
        ) as resp:
            async for line in resp.content:
                if line.startswith(b"data: "):
                    self.events += 1
                    self._event.set()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with attested_stack(work, instances=0, event_loop=args.event_loop) as stack:
        connector = aiohttp.TCPConnector(limit=args.clients + 64)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def create(client_id: str) -> dict[str, Any]:
                body = {"client_id": client_id, "model": "roadster"}
                async with http.post(f"{stack.url}/v1/sessions", json=body) as resp:
                    assert resp.status == 202, (resp.status, await resp.text())
                    got: dict[str, Any] = await resp.json()
                    return got

            async def delete(s: dict[str, Any]) -> None:
                headers = {"Authorization": f"Bearer {s['session_secret']}"}
                async with http.delete(
                    f"{stack.url}/v1/sessions/{s['session_id']}", headers=headers
                ) as resp:
                    await resp.read()

            log(f"creating {args.clients:,} waiting sessions")
            waiting = [await create(f"waiter-{n}") for n in range(args.clients)]

            async def window(phase: str, churn: bool) -> dict[str, Any]:
                log(f"{phase}: {args.seconds:.0f} s")
                calls0, events0 = await commands_run(stack.settings.redis_url), streams.events
                cpu = CpuWindow(stack.pids())
                start = time.monotonic()
                n = 0
                while time.monotonic() - start < args.seconds:
                    if churn:  # the head leaves: everyone behind moves up one
                        await delete(waiting.pop(0))
                        n += 1
                    await asyncio.sleep(stack.settings.sse_poll_s)
                elapsed = time.monotonic() - start
                used = cpu.percent()
                calls = await commands_run(stack.settings.redis_url) - calls0
                return {
                    "control_plane_cpu_pct": used["control_plane"],
                    "redis_cpu_pct": used["redis"],
                    "redis_calls_per_s": round(calls / elapsed, 1),
                    "events_per_s": round((streams.events - events0) / elapsed, 1),
                    "heads_left": n,
                }

            streams = Streams(http, stack.url)
            baseline = await window("baseline (no stream open)", churn=False)
            baseline_moving = await window("baseline, line moving", churn=True)
            log(f"opening {len(waiting):,} event streams")
            for s in waiting:
                streams.open(s["session_id"], s["session_secret"])
            async with asyncio.timeout(120):
                await streams.until(len(waiting))  # every stream said where it is
            opened = len(waiting)
            idle = await window("streams open, line still", churn=False)
            moving = await window("streams open, line moving", churn=True)
            await streams.close()
    return {"baseline": baseline, "baseline_moving": baseline_moving, "idle": idle,
            "moving": moving, "streams": opened,
            "sse_poll_s": stack.settings.sse_poll_s}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=2000, help="waiting sessions streamed")
    parser.add_argument("--seconds", type=float, default=15.0, help="each measured window")
    parser.add_argument("--event-loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-bench-queue-") as tmp:
        m = run(measure(args, Path(tmp)), "asyncio")
    base, idle, moving = m["baseline"], m["idle"], m["moving"]
    n: int = m["streams"]
    base_moving = m["baseline_moving"]

    def per_stream(phase: dict[str, Any], against: dict[str, Any], key: str) -> float:
        added: float = phase[key] - against[key]
        return round(added / n, 4)

    print(json.dumps({
        "bench": "queue_feed",
        "streams": n,
        "sse_poll_s": m["sse_poll_s"],
        "idle": idle,
        "moving": moving,
        "baseline": base,
        "baseline_moving": base_moving,
        "redis_calls_per_s_added_per_stream_idle": per_stream(idle, base, "redis_calls_per_s"),
        "redis_calls_per_s_added_per_stream_moving": per_stream(
            moving, base_moving, "redis_calls_per_s"
        ),
        "control_plane_cpu_pct_added_idle": round(
            idle["control_plane_cpu_pct"] - base["control_plane_cpu_pct"], 1
        ),
        "control_plane_cpu_pct_added_moving": round(
            moving["control_plane_cpu_pct"] - base_moving["control_plane_cpu_pct"], 1
        ),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
