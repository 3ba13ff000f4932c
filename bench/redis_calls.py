"""Count the round trips an operation makes, so they are measured, not
written down by hand.

Every broker call passes through one seam (`Connection.run`) and is one
command on the wire (a script is one EVALSHA); `counting` counts there.
`scripts_run` reads what Redis itself executed (INFO commandstats: EVALSHA
calls; commands a script runs inside are counted by Redis under their own
names, so only the script calls are round trips) to cross-check the seam.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator
from typing import Any

from control_plane.broker import Broker


@contextlib.contextmanager
def counting(broker: Broker) -> Iterator[list[int]]:
    """Count the broker's Redis calls while inside; yields [calls so far]."""
    conn = broker.conn
    real_run = conn.run
    made = [0]

    async def run(call: Awaitable[Any]) -> Any:
        made[0] += 1
        return await real_run(call)

    setattr(conn, "run", run)  # noqa: B010 - shadows the method on this instance only
    try:
        yield made
    finally:
        delattr(conn, "run")


async def scripts_run(client: Any) -> int:
    """EVALSHA + EVAL calls Redis has executed since it started (one node)."""
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


async def commands_run(url: str) -> int:
    """Every command Redis at `url` has executed since it started (INFO commandstats,
    those scripts ran included): a process's whole load on it, by difference."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return sum(int(v["calls"]) for v in stats.values())
