"""The control plane through Redis faults: Sentinel failover, kill -9 of the primary,
a restart that comes back empty. After each, the service answers normally within a
measured bound, and never with a 5xx once it does."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import redis.asyncio as aioredis

from control_plane.broker import Broker
from streamfleet.localproc import free_port, start_redis
from streamfleet.sentinel_group import SentinelGroup, redis_cli
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import REGIONS, plane_settings, running_control_plane
from tests.integration.broker.invariants import check_invariants

from .redis_faults import EU, Load, burst, some_sessions, until_serving

# A failover: down-after 1 s (only for kill -9), election and promotion ~1 s, and
# the control plane's reconnect backoff (capped at 0.5 s a step). Measured on an
# idle machine: 1.4 s (planned), 2.4 s (kill -9). The bounds leave room for a
# busy CI machine; the control plane's own share (from the moment every sentinel
# names the new primary) is bounded tighter.
FAILOVER_BOUND_S = 15.0
FOLLOW_BOUND_S = 5.0
RESTART_BOUND_S = 3.0


def sentinel_settings(group: SentinelGroup, cloud: Cloud, city_db: Path) -> object:
    return plane_settings(
        # Sentinel mode: the URL gives the data nodes' password and db; its host is unused.
        f"redis://:{group.password}@127.0.0.1/0",
        cloud,
        geoip_db=city_db,
        redis_sentinels=group.sentinel_addresses,
        redis_sentinel_password=group.password,
        rate_limit_per_minute=1_000_000,
    )


async def _through_fault(group: SentinelGroup, cloud: Cloud, city_db: Path, *, kill: bool) -> None:
    async with running_control_plane(sentinel_settings(group, cloud, city_db), cloud) as cp:  # type: ignore[arg-type]
        await cp.ready_instance(EU)  # one assignment (201); later creates queue (202)
        before = await some_sessions(cp, 10)
        load = Load(cp, before)
        runner = asyncio.create_task(load.run())
        await asyncio.sleep(0.3)  # some load before the fault
        fault = time.monotonic()
        old = await asyncio.to_thread(group.kill_primary if kill else group.failover)
        new = await asyncio.to_thread(group.wait_new_primary, old)
        assert new != old
        promoted = time.monotonic()
        took = await until_serving(cp, fault, FAILOVER_BOUND_S)
        settled = time.monotonic()
        assert settled - promoted <= FOLLOW_BOUND_S, f"{settled - promoted:.1f} s after promotion"
        # The load goes on against the new primary: wait (bounded) for 20 more calls.
        # A call begun during the fault may still be retrying: it ends within the
        # client's reconnect backoff, and is not counted.
        async with asyncio.timeout(15):
            while sum(load.after(settled + 0.7).values()) < 20:
                await asyncio.sleep(0.05)
        load.stop.set()
        await runner
        # Settled: the control plane answered normally and has since asked the
        # sentinels at least once more (every 0.5 s).
        after = load.after(settled + 0.7)
        assert sum(after.values()) >= 20, after
        assert not [s for s in after if s >= 500], f"5xx after settling: {after}"
        # Created once the control plane follows the new primary (it asks the
        # sentinels every 0.5 s): stored there, not on the old primary whose
        # writes Sentinel discards when it demotes it.
        later = [(sid, secret) for start, sid, secret in load.created if start > settled + 0.7]
        assert later
        for sid, secret in later:
            status, body, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=secret)
            assert status == 200, (status, body)
        # Everything works on the new primary, reads of earlier sessions included.
        assert set(await burst(cp, 50)) <= {201, 202}
        for sid, secret in before:
            status, body, _ = await cp.call("GET", f"/v1/sessions/{sid}", token=secret)
            # A manual failover loses nothing here; kill -9 may lose the last writes
            # (asynchronous replication): a session lost so is rebuilt from the
            # secret its user holds (docs/operations.md "Redis loses data").
            assert status == 200, (status, body)
        print(f"\n{'kill -9' if kill else 'SENTINEL FAILOVER'}: normal after {took:.2f} s")
    client = aioredis.Redis(port=new, password=group.password)
    try:
        await check_invariants(Broker(client, REGIONS))
    finally:
        await client.aclose()


async def test_sentinel_failover_serves_creates_and_reads(
    redis_sentinel: SentinelGroup, cloud: Cloud, city_db: Path
) -> None:
    await _through_fault(redis_sentinel, cloud, city_db, kill=False)


async def test_primary_killed_then_sentinel_promotes_the_replica(
    redis_sentinel: SentinelGroup, cloud: Cloud, city_db: Path
) -> None:
    await _through_fault(redis_sentinel, cloud, city_db, kill=True)


async def test_redis_restarted_empty_answers_within_seconds(
    tmp_path: Path, cloud: Cloud, city_db: Path
) -> None:
    """The case of issue 14: a full pool of connections to a Redis that restarts
    empty. Every idle connection is dead; none may fail a request."""
    port = free_port()
    server = start_redis(port, tmp_path / "redis")
    settings = plane_settings(
        f"redis://127.0.0.1:{port}/0", cloud, geoip_db=city_db, rate_limit_per_minute=1_000_000
    )
    try:
        async with running_control_plane(settings, cloud) as cp:
            iid = await cp.ready_instance(EU)
            assert set(await burst(cp, 150)) <= {201, 202}  # many pooled connections
            # In a thread: the control plane's event loop runs on meanwhile, as it would.
            await asyncio.to_thread(server.stop)
            server = await asyncio.to_thread(start_redis, port, tmp_path / "redis")  # empty
            back = time.monotonic()
            took = await until_serving(cp, back, RESTART_BOUND_S)
            # The issue saw 96 of 150 answered 503 five seconds after Redis returned.
            assert set(await burst(cp, 150)) <= {201, 202}
            status, body = await cp.agent(
                "heartbeat", {"instance_id": iid, "region": EU, "state": "ready"}
            )
            # Redis forgot the instance (rebuilding it is the fencing work's part):
            # whatever it answers, it is not "store unavailable".
            assert status < 500, (status, body)
            print(f"\nrestarted empty: normal {took:.2f} s after Redis was back")
    finally:
        server.stop()


def _offset(group: SentinelGroup, port: int, field: str) -> int:
    info = redis_cli(port, group.password, "INFO", "replication")
    return int(next(line.split(":")[1] for line in info.splitlines() if line.startswith(field)))


async def test_a_failover_that_lost_the_last_writes_keeps_every_user(
    redis_sentinel: SentinelGroup, cloud: Cloud, city_db: Path
) -> None:
    """The replica stopped (SIGSTOP, by its PID) and the primary dropped its link
    (CLIENT KILL TYPE replica: nothing after is sent to it, nor buffered in its
    socket) before the last creates; then the primary died (kill -9): the
    promoted replica never had them. Every user
    still reads their session with the secret they hold (none gets 404): the
    waiting ones are back in line, in their order, and the line is served."""
    group = redis_sentinel
    async with running_control_plane(sentinel_settings(group, cloud, city_db), cloud) as cp:  # type: ignore[arg-type]
        iid = await cp.ready_instance(EU)
        kept = await some_sessions(cp, 3)  # one assigned, two waiting
        primary = group.primary_port()
        (replica,) = [p for p in group.node_ports if p != primary]
        async with asyncio.timeout(10):  # the replica has everything so far
            while _offset(group, replica, "slave_repl_offset") < _offset(
                group, primary, "master_repl_offset"
            ):
                await asyncio.sleep(0.05)
        stopped = group.nodes[replica].popen
        assert stopped is not None
        stopped.send_signal(signal.SIGSTOP)
        try:
            killed = await asyncio.to_thread(
                redis_cli, primary, group.password, "CLIENT", "KILL", "TYPE", "replica"
            )
            assert killed.strip() == "1", killed
            lost = await some_sessions(cp, 4)  # waiting; written to the primary only
            old = await asyncio.to_thread(group.kill_primary)
        finally:
            stopped.send_signal(signal.SIGCONT)
        await asyncio.to_thread(group.wait_new_primary, old)
        await until_serving(cp, time.monotonic(), FAILOVER_BOUND_S)
        # Every user reads (at once: a lost session's first read waits one
        # heartbeat period, in which an agent streaming it would report it).
        everyone = [*kept, *lost]
        answers = await asyncio.gather(
            *(cp.call("GET", f"/v1/sessions/{sid}", token=secret) for sid, secret in everyone)
        )
        views = {}
        for (sid, _), (status, view, _) in zip(everyone, answers, strict=True):
            assert status == 200 and view["state"] in ("queued", "assigned"), (status, view)
            views[sid] = view
        # The lost ones were rebuilt from their secrets, in their order, ahead of
        # the kept waiters and of everyone who arrived after the failover.
        positions = [views[sid]["position"] for sid, _ in lost]
        assert positions == [1, 2, 3, 4], positions
        # The kept assignment ends; the instance's next waiter is the first of
        # the rebuilt ones (they go ahead of the kept waiters: docs/operations.md
        # "Redis loses data", what a partial loss costs).
        sid, secret = kept[0]
        assert views[sid]["state"] == "assigned"
        assert (await cp.call("DELETE", f"/v1/sessions/{sid}", token=secret))[0] == 200
        status, hb = await cp.agent(
            "heartbeat", {"instance_id": iid, "region": EU, "state": "ready"}
        )
        assert status == 200 and hb["assignment"]["session_id"] == lost[0][0], hb
