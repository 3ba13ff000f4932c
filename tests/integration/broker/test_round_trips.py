"""Round trips per hot-path operation, counted at the broker's one Redis seam
and checked against what a real Redis executed (INFO commandstats: each was
one script call): a create that finds an instance costs two (region_place,
session_create), ending it two (session_end, region_release); a heartbeat
that changes nothing one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis

from bench.redis_calls import counting, scripts_run
from control_plane.broker import Broker
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock
from control_plane.domain import RateLimited
from streamfleet.lifecycle import EndReason, InstanceState, SessionState

EU, EUW = "eu-central-1", "eu-west-1"
T = TypeVar("T")


@pytest.fixture
async def single(redis_server: Any) -> AsyncIterator[Broker]:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    broker = Broker(client, (EU, EUW), BrokerSettings(), ManualClock())
    try:
        yield broker
    finally:
        await client.aclose()


async def count_calls(broker: Broker, op: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    """(op's result, its round trips), every one of them a script Redis ran."""
    before = await scripts_run(broker.redis)
    with counting(broker) as made:
        result = await op()
    assert await scripts_run(broker.redis) - before == made[0], "a call that was not a script"
    return result, made[0]


async def _warm(broker: Broker) -> None:
    """Load every script once (a first EVALSHA answers NOSCRIPT and is resent)."""
    await broker.register_instance(EU, "i-warm", "127.11.0.250", ready=True)
    s = (await broker.create_session("warm", [EU])).session
    await broker.end_session(s.session_id, EndReason.CLIENT_ENDED)
    await broker.create_session("warm-q", [EU, EUW])  # no capacity: the queued path
    await broker.heartbeat(EU, "i-warm", InstanceState.RECYCLING, None, None)


async def test_an_assigned_create_and_its_end_cost_two_round_trips_each(single: Broker) -> None:
    broker = single
    await _warm(broker)
    await broker.redis.flushall()  # scripts stay loaded
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    rate = ("127.0.0.9", 100, 60_000)
    placed, created = await count_calls(
        broker, lambda: broker.create_session("alice", [EU, EUW], rate=rate)
    )
    assert placed.session.state is SessionState.ASSIGNED and not placed.existing
    assert created <= 2
    # The rate limit and the arrival were counted in the same calls.
    assert (await broker.arrivals_per_min(EU))[-1] == 1
    _, ended = await count_calls(
        broker, lambda: broker.end_session(placed.session.session_id, EndReason.CLIENT_ENDED)
    )
    assert ended <= 2
    assert (await broker.instance_states(EU))["i-1"] is InstanceState.RECYCLING


async def test_a_heartbeat_that_changes_nothing_costs_one_round_trip(single: Broker) -> None:
    broker = single
    await _warm(broker)
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    _, beat = await count_calls(
        broker, lambda: broker.heartbeat(EU, "i-1", InstanceState.READY, None, None)
    )
    assert beat == 1


async def test_the_rate_limit_counts_inside_the_create(single: Broker) -> None:
    broker = single
    await _warm(broker)
    rate = ("127.0.0.7", 2, 60_000)
    for client in ("a", "b"):
        await broker.create_session(client, [EU], rate=rate)
    with pytest.raises(RateLimited) as refused:
        await broker.create_session("c", [EU], rate=rate)
    assert 0 < refused.value.reset_ms <= 60_000
    # Refused before anything was written: no session, no arrival, no reservation.
    assert await broker.reads.queue_depth(EU) == 3  # warm-q, a, b
    assert (await broker.arrivals_per_min(EU))[-1] == 2 + 2  # the warm-up's two


async def test_the_streaming_repair_reads_one_page_per_pass(redis_server: Any) -> None:
    """The repair of serving instances resumes a cursor: a region with more
    serving instances than a page is swept over several passes (each one's
    cost bounded by the page, not the fleet), and the sweep still finds every
    leak. Hashes are made table-encoded here (a small listpack hash always
    comes back whole in one page, which is the small-region case)."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    old = (await client.config_get("hash-max-listpack-entries"))["hash-max-listpack-entries"]
    await client.config_set("hash-max-listpack-entries", 0)
    try:
        broker = Broker(client, (EU,), BrokerSettings(reap_batch=2), ManualClock())
        sids = []
        for i in range(12):
            await broker.register_instance(EU, f"i-{i}", f"127.11.0.{i + 1}", ready=True)
            sids.append((await broker.create_session(f"c{i}", [EU])).session.session_id)
        for sid in sids:  # ended, but the release never happened (a crashed caller)
            await broker.store.end(sid, EndReason.CLIENT_ENDED, None, None)
        leaked = await _reserved(broker)
        assert leaked == 12
        await broker.reap(EU)
        first_pass = 12 - await _reserved(broker)
        assert 0 < first_pass < 12, first_pass  # a page, not the whole region
        for _ in range(30):
            if not await _reserved(broker):
                break
            await broker.reap(EU)
        assert await _reserved(broker) == 0
    finally:
        await client.config_set("hash-max-listpack-entries", old)
        await client.aclose()


async def _reserved(broker: Broker) -> int:
    states = await broker.instance_states(EU)
    return sum(1 for s in states.values() if s is InstanceState.RESERVED)
