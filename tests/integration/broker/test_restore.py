"""Waiting sessions rebuilt from their users' s2 secrets after Redis lost them
(control_plane/broker/restore.py, session_restore.lua), on a single Redis and
a 3-node Cluster (conftest's parametrization: the session script touches only
its client's slot, the queue adds only their region's)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from control_plane.broker import Broker
from control_plane.broker.restore import REBUILT_TICKET_BASE, rebuild_window_ms
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock
from control_plane.domain import Session, SessionExpired
from control_plane.session_secrets import SessionFacts, SessionSecrets
from streamfleet.lifecycle import InstanceState, SessionState

from .conftest import REGIONS
from .crash import Crash, crash_after, flush

EU, WEST = REGIONS[0], REGIONS[1]
SECRETS = SessionSecrets(b"restore-test-agent-token-key-32by")


@pytest.fixture
def broker(redis_client: Any, clock: ManualClock, settings: BrokerSettings) -> Broker:
    return Broker(
        redis_client, REGIONS, settings, clock,
        mint_secret=SECRETS.mint, mint_session_secret=SECRETS.mint_session,
    )  # fmt: skip


def facts_of(s: Session) -> SessionFacts:
    f = SECRETS.facts(s.session_id, s.secret)
    assert f is not None
    return f


async def rebuild(
    broker: Broker, clock: ManualClock, s: Session, *, end: bool = False
) -> Session | None:
    """A user's read: the first finds it missing and is told to wait one
    heartbeat period (an agent may still report it); then it is rebuilt."""
    got = await broker.rebuild_session(facts_of(s), s.secret, end=end)
    if got.wait_ms:
        assert not end and got.session is None
        assert got.wait_ms == broker.settings.heartbeat_interval_s * 1000
        clock.advance(got.wait_ms / 1000)
        got = await broker.rebuild_session(facts_of(s), s.secret, end=end)
    assert not got.wait_ms
    return got.session


async def waiting(broker: Broker, clock: ManualClock, count: int) -> list[Session]:
    out = []
    for n in range(count):
        clock.advance(0.001)
        placed = await broker.create_session(f"user-{n}", [EU, WEST], queue_regions=[EU, WEST])
        assert placed.session.state is SessionState.QUEUED
        out.append(placed.session)
    return out


async def line(broker: Broker, region: str) -> list[str]:
    return await broker.reads.queue_head(region, 100)


async def test_waiters_come_back_in_creation_order_in_every_region(
    broker: Broker, clock: ManualClock
) -> None:
    users = await waiting(broker, clock, 8)
    await flush(broker.redis)
    for s in reversed(users):  # they come back in any order
        back = await rebuild(broker, clock, s)
        assert back is not None and back.state is SessionState.QUEUED
        assert back.ticket == facts_of(s).created_ms - REBUILT_TICKET_BASE
        assert back.queue_regions == (EU, WEST) and back.client_id == s.client_id
    ids = [s.session_id for s in users]
    assert await line(broker, EU) == ids and await line(broker, WEST) == ids
    # A newcomer waits behind them; an instance serves the first of them.
    later = await broker.create_session("newcomer", [EU])
    assert later.position == 9
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    assert (await broker.get_session(ids[0])).state is SessionState.ASSIGNED
    assert await line(broker, WEST) == ids[1:]


async def test_an_existing_session_is_answered_as_it_is(broker: Broker, clock: ManualClock) -> None:
    (s,) = await waiting(broker, clock, 1)
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    assigned = await broker.get_session(s.session_id)
    assert assigned.state is SessionState.ASSIGNED
    back = await rebuild(broker, clock, s)
    assert back == assigned


async def test_ended_by_its_user_is_not_requeued(broker: Broker, clock: ManualClock) -> None:
    (s,) = await waiting(broker, clock, 1)
    await flush(broker.redis)
    ended = await rebuild(broker, clock, s, end=True)
    assert ended is not None and ended.state is SessionState.ENDED
    again = await rebuild(broker, clock, s)
    assert again is not None and again.state is SessionState.ENDED
    assert await line(broker, EU) == []
    # The client may start again at once.
    assert (await broker.create_session(s.client_id, [EU])).session.session_id != s.session_id


async def test_a_client_that_started_again_keeps_its_new_session(
    broker: Broker, clock: ManualClock
) -> None:
    (s,) = await waiting(broker, clock, 1)
    await flush(broker.redis)
    new = (await broker.create_session(s.client_id, [EU])).session
    assert await rebuild(broker, clock, s) is None
    assert await line(broker, EU) == [new.session_id]


async def test_a_streaming_session_its_agent_reports_is_never_put_in_line(
    broker: Broker, clock: ManualClock
) -> None:
    """The user reads before the agent reports (within one heartbeat period): it
    is not queued meanwhile, and once the agent has reported it is live there."""
    (s,) = await waiting(broker, clock, 1)
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    got = await broker.get_session(s.session_id)
    assert got.epoch is not None
    await broker.client_event(EU, "i-1", s.session_id, got.epoch, connected=True)
    await flush(broker.redis)
    first = await broker.rebuild_session(facts_of(s), s.secret)
    assert first.wait_ms > 0 and first.session is None
    assert await broker.reads.session(s.session_id) is None and await line(broker, EU) == []
    clock.advance(1)
    await broker.register_instance(
        EU, "i-1", "127.11.0.1", max_epoch=got.epoch, served=(s.session_id, got.epoch, True)
    )
    clock.advance(broker.settings.heartbeat_interval_s)
    back = await broker.rebuild_session(facts_of(s), s.secret)
    assert back.session is not None and back.session.state is SessionState.CONNECTED
    assert await line(broker, EU) == []


async def test_too_old_to_rebuild(
    broker: Broker, clock: ManualClock, settings: BrokerSettings
) -> None:
    (s,) = await waiting(broker, clock, 1)
    await flush(broker.redis)
    clock.advance(rebuild_window_ms(settings) / 1000)
    with pytest.raises(SessionExpired) as refused:
        await rebuild(broker, clock, s)
    assert refused.value.field == "session_secret"
    with contextlib.suppress(Exception):
        await broker.get_session(s.session_id)
        pytest.fail("nothing may be created")


async def test_a_rebuild_that_dies_midway_is_finished_by_the_reaper(
    broker: Broker, clock: ManualClock, settings: BrokerSettings
) -> None:
    """Dies after the session script, before its queue adds: the journal entry
    lets the reaper place it (no waiter is stranded outside every queue)."""
    (s,) = await waiting(broker, clock, 1)
    await flush(broker.redis)
    for calls in range(1, 8):  # the first crash point that leaves it in no queue
        await broker.rebuild_session(facts_of(s), s.secret)  # marks it missing
        clock.advance(broker.settings.heartbeat_interval_s)
        with crash_after(broker, calls), contextlib.suppress(Crash):
            await broker.rebuild_session(facts_of(s), s.secret)
        if await broker.reads.session(s.session_id) and await line(broker, EU) == []:
            break
        await flush(broker.redis)
    else:
        pytest.fail("no crash point between the session script and its queue adds")
    assert (await broker.get_session(s.session_id)).state is SessionState.QUEUED
    clock.advance(settings.placing_grace_s + 1)
    for region in REGIONS:
        await broker.reap(region)
    assert await line(broker, EU) == [s.session_id]


async def test_the_agents_rebuild_after_the_users_takes_it_out_of_line(
    broker: Broker, clock: ManualClock
) -> None:
    (s,) = await waiting(broker, clock, 1)
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    got = await broker.get_session(s.session_id)
    assert got.epoch is not None
    await broker.client_event(EU, "i-1", s.session_id, got.epoch, connected=True)
    await flush(broker.redis)
    back = await rebuild(broker, clock, s)  # the user's read came first
    assert back is not None and back.state is SessionState.QUEUED
    reg = await broker.register_instance(
        EU, "i-1", "127.11.0.1", max_epoch=got.epoch, served=(s.session_id, got.epoch, True)
    )
    assert reg is InstanceState.STREAMING
    now = await broker.get_session(s.session_id)
    assert now.state is SessionState.CONNECTED and now.epoch == got.epoch
    assert await line(broker, EU) == [] and await line(broker, WEST) == []


async def test_a_create_that_redis_forgets_midway_is_created_afresh(
    broker: Broker, redis_client: Any
) -> None:
    """Redis restarts empty between the create's session record and its queue
    (nothing ready: it waits): the user is answered a live, queued session,
    never 404 for a session they never held."""
    conn = broker.conn
    real_run = conn.run
    made = [0]

    async def run(call: Any) -> Any:
        got = await real_run(call)
        made[0] += 1
        if made[0] == 2:  # region_place (journaled), session_create
            await flush(redis_client)
        return got

    setattr(conn, "run", run)  # noqa: B010 - shadows the method on this instance only
    try:
        placed = await broker.create_session("alice", list(REGIONS[:1]))
    finally:
        delattr(conn, "run")
    s = placed.session
    assert s.state is SessionState.QUEUED and not placed.existing
    assert (await broker.get_session(s.session_id)).state is SessionState.QUEUED
    assert await broker.reads.queue_rank(REGIONS[0], s.session_id) == 0
