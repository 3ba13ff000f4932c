"""Re-placement (issue 14): a session whose instance is lost, restarted, or
whose renderer crashed goes back to the head of its queues with its
configuration and is placed again, same region first, at a fresh epoch.
Runs against a single Redis and a Redis Cluster (conftest)."""

from __future__ import annotations

import contextlib

import pytest

from control_plane.broker import Broker
from control_plane.broker.outbox import RequeueEntry
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock
from control_plane.domain import Session, StaleEpoch
from streamfleet.lifecycle import EndReason, InstanceState, SessionState

from .invariants import check_invariants

EU, EUW = "eu-central-1", "eu-west-1"
CONFIG = {"color": "red", "camera": "orbit"}


@pytest.fixture
def settings() -> BrokerSettings:
    return BrokerSettings(
        claim_ttl_s=90, reconnect_window_s=60, queue_timeout_s=600, heartbeat_interval_s=5,
        missed_heartbeats=3, max_replacements=2,
    )  # fmt: skip


async def _instance(broker: Broker, region: str, n: int) -> str:
    iid = f"i-{region}-{n}"
    octet = 11 if region == EU else 12
    await broker.register_instance(region, iid, f"127.{octet}.0.{n}", ready=True)
    return iid


async def _beat(broker: Broker, region: str, iid: str) -> None:
    serving = (await broker.instance_sessions(region)).get(iid)
    state = (await broker.instance_states(region))[iid]
    sid, epoch = serving if serving else (None, None)
    reported = InstanceState.READY if state is InstanceState.RECYCLING else state
    with contextlib.suppress(StaleEpoch):
        await broker.heartbeat(region, iid, reported, sid, epoch)


async def _lose(
    broker: Broker, clock: ManualClock, dead: str, alive: list[tuple[str, str]]
) -> None:
    """`dead` stops heartbeating; the others go on; the reaper watches every 5 s
    until `dead` is declared lost (3 missed heartbeats of 5 s)."""
    for region in broker.regions:
        await broker.reap(region)
    for _ in range(4):
        clock.advance(5)
        for region, iid in alive:
            await _beat(broker, region, iid)
        for region in broker.regions:
            await broker.reap(region)
    for region in broker.regions:
        if dead in await broker.instance_states(region):
            assert (await broker.instance_states(region))[dead] is InstanceState.LOST


async def _connect(broker: Broker, s: Session) -> None:
    assert s.region and s.instance_id and s.epoch is not None
    await broker.client_event(s.region, s.instance_id, s.session_id, s.epoch, connected=True)


async def test_lost_instance_re_places_its_session_in_the_same_region_first(
    broker: Broker, clock: ManualClock
) -> None:
    euw = await _instance(broker, EUW, 1)
    first = (await broker.create_session("alice", [EU, EUW], configuration=CONFIG)).session
    assert (first.region, first.instance_id) == (EUW, euw)  # EU had nothing ready
    await _connect(broker, first)
    # Capacity appears in both regions; the lost region comes first.
    eu, euw2 = await _instance(broker, EU, 1), await _instance(broker, EUW, 2)
    await _lose(broker, clock, euw, [(EU, eu), (EUW, euw2)])
    moved = await broker.get_session(first.session_id)
    assert (moved.state, moved.region, moved.instance_id) == (SessionState.ASSIGNED, EUW, euw2)
    assert moved.epoch is not None and first.epoch is not None
    assert moved.configuration == first.configuration and moved.model == first.model
    assert first.claim_deadline_ms is not None and moved.claim_deadline_ms is not None
    assert moved.claim_deadline_ms - first.claim_deadline_ms >= 15_000  # a fresh claim TTL
    assert moved.replaced == 1 and moved.secret == first.secret
    await check_invariants(broker)
    # Fencing: the lost agent cannot report for the re-placed session.
    with pytest.raises(StaleEpoch):
        await broker.client_event(EUW, euw, first.session_id, first.epoch, connected=True)
    # It comes back: it resets first and is told to end what it served.
    reply = await broker.heartbeat(EUW, euw, InstanceState.STREAMING, first.session_id, first.epoch)
    assert reply.state is InstanceState.RECYCLING and "end_session" in reply.commands


async def test_without_a_free_instance_it_waits_at_the_head_of_the_queue(
    broker: Broker, clock: ManualClock
) -> None:
    a = await _instance(broker, EU, 1)
    s = (await broker.create_session("alice", [EU], configuration=CONFIG)).session
    await _connect(broker, s)
    waiting = (await broker.create_session("bob", [EU])).session
    assert waiting.state is SessionState.QUEUED
    await _lose(broker, clock, a, [])
    requeued = await broker.get_session(s.session_id)
    assert requeued.state is SessionState.QUEUED and requeued.instance_id is None
    assert await broker.reads.queue_head(EU, 5) == [s.session_id, waiting.session_id]
    late = (await broker.create_session("carol", [EU])).session
    assert await broker.reads.queue_rank(EU, late.session_id) == 2
    # The next ready instance serves the re-placed session before bob.
    b = await _instance(broker, EU, 2)
    served = await broker.get_session(s.session_id)
    assert (served.state, served.instance_id) == (SessionState.ASSIGNED, b)
    assert (await broker.get_session(waiting.session_id)).state is SessionState.QUEUED
    await check_invariants(broker)


async def test_re_placement_is_bounded(broker: Broker, clock: ManualClock) -> None:
    s = None
    for n in range(1, 4):  # max_replacements=2: the third loss ends it
        iid = await _instance(broker, EU, n)
        if s is None:
            s = (await broker.create_session("alice", [EU])).session
        assert (await broker.get_session(s.session_id)).instance_id == iid
        await _lose(broker, clock, iid, [])
    assert s is not None
    gone = await broker.get_session(s.session_id)
    assert (gone.state, gone.end_reason, gone.replaced) == (
        SessionState.ENDED, EndReason.INSTANCE_LOST, 2,
    )  # fmt: skip


async def test_renderer_crash_re_places_on_the_same_instance_once_it_is_back(
    broker: Broker,
) -> None:
    iid = await _instance(broker, EU, 1)
    s = (await broker.create_session("alice", [EU], configuration=CONFIG)).session
    await _connect(broker, s)
    assert s.epoch is not None
    assert await broker.replace_session(EU, iid, s.session_id, s.epoch)
    assert not await broker.replace_session(EU, iid, s.session_id, s.epoch)  # stale now
    assert (await broker.instance_states(EU))[iid] is InstanceState.RECYCLING
    assert (await broker.get_session(s.session_id)).state is SessionState.QUEUED
    await broker.mark_ready(EU, iid)  # the supervisor restarted the renderer
    back = await broker.get_session(s.session_id)
    assert (back.state, back.instance_id, back.epoch) == (SessionState.ASSIGNED, iid, s.epoch + 1)
    assert back.configuration == s.configuration


async def test_renderer_crash_prefers_another_ready_instance(broker: Broker) -> None:
    iid = await _instance(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    other = await _instance(broker, EU, 2)
    assert s.epoch is not None
    await broker.replace_session(EU, iid, s.session_id, s.epoch)
    assert (await broker.get_session(s.session_id)).instance_id == other


async def test_an_agent_that_restarted_hands_its_session_back(broker: Broker) -> None:
    """kill -9 and a quick reboot: it registers again before it is declared lost,
    without the session; the session is re-placed (here, once it is ready)."""
    iid = await _instance(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    await _connect(broker, s)
    state = await broker.register_instance(EU, iid, "127.11.0.1")
    assert state is InstanceState.RECYCLING
    assert (await broker.get_session(s.session_id)).state is SessionState.QUEUED
    await broker.mark_ready(EU, iid)
    back = await broker.get_session(s.session_id)
    assert back.state is SessionState.ASSIGNED and back.epoch == (s.epoch or 0) + 1
    # A registration that reports the session it serves changes nothing.
    served = (s.session_id, back.epoch, False)
    assert await broker.register_instance(EU, iid, "127.11.0.1", served=served) is (
        InstanceState.RESERVED
    )
    assert (await broker.get_session(s.session_id)).epoch == back.epoch


async def test_an_ended_session_is_not_re_placed(broker: Broker, clock: ManualClock) -> None:
    iid = await _instance(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    assert s.epoch is not None
    # The region side only (its caller died), then the client ends it.
    got = await broker.store.replace(EU, iid, s.session_id, s.epoch)
    assert got.ok and got.entry is not None
    await broker.end_session(s.session_id, EndReason.CLIENT_ENDED)
    await broker.settlement.settle(EU, [got.entry])
    gone = await broker.get_session(s.session_id)
    assert (gone.state, gone.end_reason) == (SessionState.ENDED, EndReason.CLIENT_ENDED)


async def test_a_late_repeat_of_a_finished_re_placement_changes_nothing(broker: Broker) -> None:
    """Epochs count per instance: the session's next instance may issue the same
    epoch. A requeue entry settled again after its re-placement is done (its
    caller died before striking it off) must not move the session again."""
    a = await _instance(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    assert s.epoch == 1
    got = await broker.store.replace(EU, a, s.session_id, s.epoch)
    assert got.entry is not None
    b = await _instance(broker, EU, 2)  # takes the re-placed session, at its epoch 1
    await broker.settlement.settle(EU, [got.entry])
    moved = await broker.get_session(s.session_id)
    assert (moved.instance_id, moved.epoch, moved.replaced) == (b, 1, 1)
    await broker.settlement.settle(EU, [got.entry])  # the late repeat
    again = await broker.get_session(s.session_id)
    assert (again.state, again.instance_id, again.replaced) == (SessionState.ASSIGNED, b, 1)
    await check_invariants(broker)


async def test_an_instance_owing_its_last_session_is_handed_to_nobody(
    broker: Broker, clock: ManualClock
) -> None:
    """The reaper dies after declaring a streaming instance lost, before it
    re-places the session (the requeue is owed in the outbox). The agent was only
    cut off; it heartbeats ready again. Until the owed re-placement is settled the
    instance is handed to nobody: two live sessions on one GPU otherwise."""
    x = await _instance(broker, EU, 1)
    alice = (await broker.create_session("alice", [EU], configuration=CONFIG)).session
    await _connect(broker, alice)
    owed = []
    for _ in range(5):  # a reaper watching every 5 s: 3 missed heartbeats
        owed += await broker.store.reap(EU)  # ... and its caller dies each time
        clock.advance(5)
    assert [e for e in owed if isinstance(e, RequeueEntry)]
    assert (await broker.instance_states(EU))[x] is InstanceState.LOST
    await broker.heartbeat(EU, x, InstanceState.READY)  # back: renderer reset
    assert (await broker.instance_states(EU))[x] is InstanceState.RECYCLING
    bob = (await broker.create_session("bob", [EU])).session
    assert bob.state is SessionState.QUEUED  # not handed x
    await check_invariants(broker)
    # The reaper settles the owed entry after the outbox grace; alice goes back
    # to the head of the line, and x's next heartbeat serves her before bob.
    await broker.reap(EU)
    assert (await broker.get_session(alice.session_id)).state is SessionState.QUEUED
    await broker.heartbeat(EU, x, InstanceState.READY)
    back = await broker.get_session(alice.session_id)
    assert (back.state, back.instance_id, back.configuration) == (
        SessionState.ASSIGNED, x, alice.configuration,
    )  # fmt: skip
    assert (await broker.get_session(bob.session_id)).state is SessionState.QUEUED
    await check_invariants(broker)


async def test_a_streaming_session_its_agent_lost_is_re_placed_by_its_heartbeat(
    broker: Broker,
) -> None:
    """The agent restarted and its registration (which re-places the session)
    was lost with Redis' last writes: the region still has it stream alice, the
    agent heartbeats ready with nothing, having ended nothing. Alice is re-placed."""
    x = await _instance(broker, EU, 1)
    alice = (await broker.create_session("alice", [EU], configuration=CONFIG)).session
    await _connect(broker, alice)
    y = await _instance(broker, EU, 2)
    reply = await broker.heartbeat(EU, x, InstanceState.READY, max_epoch=0)
    assert (reply.state, reply.session_id) == (InstanceState.RECYCLING, None)
    moved = await broker.get_session(alice.session_id)
    assert (moved.state, moved.instance_id, moved.configuration, moved.replaced) == (
        SessionState.ASSIGNED, y, alice.configuration, 1,
    )  # fmt: skip
    await broker.heartbeat(EU, x, InstanceState.READY)  # settled: x is ready again
    assert (await broker.instance_states(EU))[x] is InstanceState.READY
    await check_invariants(broker)


async def test_a_reservation_its_agent_has_not_heard_of_yet_stands(broker: Broker) -> None:
    """Reserved, not streaming: the agent learns the assignment from this very
    answer, so reporting ready with nothing is no contradiction."""
    x = await _instance(broker, EU, 1)
    alice = (await broker.create_session("alice", [EU])).session
    reply = await broker.heartbeat(EU, x, InstanceState.READY)
    assert (reply.state, reply.session_id, reply.epoch) == (
        InstanceState.RESERVED, alice.session_id, alice.epoch,
    )  # fmt: skip
    assert (await broker.get_session(alice.session_id)).instance_id == x


@pytest.mark.parametrize(
    ("reason", "state"),
    [(EndReason.IDLE, SessionState.ENDED), (EndReason.INSTANCE_LOST, SessionState.QUEUED)],
)
async def test_an_agent_end_whose_event_was_lost_is_settled_by_its_heartbeat(
    broker: Broker, reason: EndReason, state: SessionState
) -> None:
    """The agent ended alice itself (idle; or its renderer crashed) and its event
    never arrived: its heartbeats repeat that end, which is applied as the event
    would be (ended; or re-placed), never taken for a lost session."""
    x = await _instance(broker, EU, 1)
    alice = (await broker.create_session("alice", [EU])).session
    await _connect(broker, alice)
    assert alice.epoch is not None
    ended = (alice.session_id, alice.epoch, reason)
    await broker.heartbeat(EU, x, InstanceState.RECYCLING, max_epoch=alice.epoch, ended=ended)
    after = await broker.get_session(alice.session_id)
    assert after.state is state
    assert after.end_reason is (reason if state is SessionState.ENDED else None)
    assert after.replaced == (1 if state is SessionState.QUEUED else 0)
    await broker.heartbeat(EU, x, InstanceState.READY, max_epoch=alice.epoch, ended=ended)
    expected = InstanceState.READY if state is SessionState.ENDED else InstanceState.RESERVED
    assert (await broker.instance_states(EU))[x] is expected  # the re-placement came back
    await check_invariants(broker)
