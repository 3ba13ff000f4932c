"""Process death between two Redis calls, injected at the one seam every call
passes through (`Connection.run`): after `calls` calls the next one is never
sent and the operation stops, as if its process had been killed there."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator
from typing import Any

from control_plane.broker import Broker
from control_plane.domain import StaleEpoch, UnknownInstance
from streamfleet.lifecycle import InstanceState


class Crash(Exception):
    """The process died here (raised instead of the next Redis call)."""


@contextlib.contextmanager
def crash_after(broker: Broker, calls: int) -> Iterator[list[int]]:
    """Let `calls` Redis calls through, then crash; yields [calls made]."""
    conn = broker.conn
    real_run = conn.run
    made = [0]

    async def run(call: Awaitable[Any]) -> Any:
        if made[0] >= calls:
            if hasattr(call, "close"):
                call.close()  # never sent
            raise Crash(f"after {calls} calls")
        made[0] += 1
        return await real_run(call)

    setattr(conn, "run", run)  # noqa: B010 - shadows the method on this instance only
    try:
        yield made
    finally:
        delattr(conn, "run")


async def beat(broker: Broker, region: str, iid: str) -> None:
    """One heartbeat of a well-behaved agent: resets and reports ready when the
    control plane says it must, else echoes its state and session."""
    state = (await broker.instance_states(region)).get(iid)
    if state is None or state is InstanceState.TERMINATED:
        return
    serving = (await broker.instance_sessions(region)).get(iid)
    reported = (
        InstanceState.READY
        if state in (InstanceState.RECYCLING, InstanceState.BOOTING, InstanceState.LOST)
        else state
    )
    sid, epoch = serving if serving else (None, None)
    with contextlib.suppress(StaleEpoch, UnknownInstance):
        await broker.heartbeat(region, iid, reported, sid, epoch)


async def flush(client: Any) -> None:
    from redis.asyncio.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.flushall()
