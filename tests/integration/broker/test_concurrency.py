"""Concurrency head-on: N concurrent callers for K free instances give exactly K."""

from __future__ import annotations

import asyncio
from collections import Counter

from control_plane.broker import Broker
from streamfleet.lifecycle import SessionState

from .invariants import all_sessions, check_invariants

EU, EUW = "eu-central-1", "eu-west-1"


async def fill(broker: Broker, per_region: int) -> None:
    for octet, region in ((11, EU), (12, EUW)):
        for i in range(per_region):
            await broker.register_instance(
                region, f"i-{region}-{i}", f"127.{octet}.{i // 250}.{i % 250 + 1}", ready=True
            )


async def test_2000_distinct_clients_for_100_instances(broker: Broker) -> None:
    await fill(broker, 50)
    placements = await asyncio.gather(
        *(
            broker.create_session(f"client-{i}", [EU, EUW] if i % 2 else [EUW, EU])
            for i in range(2000)
        )
    )
    states = Counter(p.session.state for p in placements)
    assert states == {SessionState.ASSIGNED: 100, SessionState.QUEUED: 1900}
    instances = [(p.session.region, p.session.instance_id) for p in placements if p.assigned]
    assert len(set(instances)) == 100
    positions = sorted(p.position for p in placements if p.position is not None)
    assert positions[0] == 1 and len(positions) == 1900
    await check_invariants(broker)


async def test_every_client_twice_concurrently_gets_one_live_session(broker: Broker) -> None:
    await fill(broker, 50)
    calls = [broker.create_session(f"client-{i}", [EU, EUW]) for i in range(2000) for _ in range(2)]
    placements = await asyncio.gather(*calls)
    by_client: dict[str, set[str]] = {}
    for p in placements:
        by_client.setdefault(p.session.client_id, set()).add(p.session.session_id)
    assert len(by_client) == 2000
    assert all(len(ids) == 1 for ids in by_client.values())
    assert sum(1 for p in placements if p.existing) == 2000
    # An answer is a snapshot; what counts is what Redis holds once all returned.
    final = await all_sessions(broker)
    assert len(final) == 2000
    states = Counter(s.state for s in final)
    assert states == {SessionState.ASSIGNED: 100, SessionState.QUEUED: 1900}
    assert len({(s.region, s.instance_id) for s in final if s.instance_id}) == 100
    await check_invariants(broker)
