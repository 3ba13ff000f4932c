"""Every crash point of every multi-call operation is repaired by the reaper
within claim TTL + one reaper period (invariant 2), stranded waiters included.

Each operation runs against a fresh store with a crash injected after its
k-th Redis call, for k = 0, 1, 2, ... until it completes uncrashed; then the
reaper runs every period for claim TTL + one period while the live agents
heartbeat, and the invariants must hold with nothing left over: no leaked
instance or session, no queued session outside every queue, no open outbox or
placement journal entry.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from control_plane.broker import Broker
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock
from control_plane.domain import Session
from streamfleet.lifecycle import EndReason, InstanceState, SessionState

from .crash import Crash, beat, crash_after, flush
from .invariants import all_sessions, check_invariants, pending_follow_ups, stranded

EU, EUW = "eu-central-1", "eu-west-1"
PERIOD_S = 5  # the reaper period these tests model
SETTINGS = BrokerSettings(
    claim_ttl_s=30, reconnect_window_s=20, heartbeat_interval_s=5, missed_heartbeats=3,
    queue_timeout_s=600, outbox_grace_s=2,
)  # fmt: skip

Op = Callable[[], Awaitable[Any]]


@pytest.fixture
def settings() -> BrokerSettings:
    return SETTINGS


class World:
    """A small fleet whose agents keep heartbeating through the repair window."""

    def __init__(self, broker: Broker, clock: ManualClock) -> None:
        self.broker, self.clock = broker, clock
        self.agents: list[tuple[str, str]] = []

    async def instance(self, region: str, *, ready: bool = True) -> str:
        n = len(self.agents)
        iid = f"i-{region}-{n}"
        ip = f"127.{11 if region == EU else 12}.0.{n + 1}"
        await self.broker.register_instance(region, iid, ip, ready=ready)
        self.agents.append((region, iid))
        return iid

    async def session(self, client: str) -> Session:
        for s in await all_sessions(self.broker):
            if s.client_id == client and s.state is not SessionState.ENDED:
                return s
        raise AssertionError(f"{client} has no live session")

    async def repair_window(self) -> None:
        for _ in range(math.ceil((SETTINGS.claim_ttl_s + PERIOD_S) / PERIOD_S)):
            self.clock.advance(PERIOD_S)
            for region, iid in self.agents:
                await beat(self.broker, region, iid)
            for region in self.broker.regions:
                await self.broker.reap(region)


async def _create_assigned(w: World) -> Op:
    await w.instance(EU)
    return lambda: w.broker.create_session("alice", [EU, EUW])


async def _create_fallback(w: World) -> Op:
    await w.instance(EUW)
    return lambda: w.broker.create_session("alice", [EU, EUW])


async def _create_queued(w: World) -> Op:
    await w.instance(EU, ready=False)  # booting: no capacity yet
    await w.broker.create_session("bob", [EU])  # a waiter ahead
    return lambda: w.broker.create_session("alice", [EU, EUW])


async def _end_assigned(w: World) -> Op:
    await w.instance(EU)
    sid = (await w.broker.create_session("alice", [EU])).session.session_id
    return lambda: w.broker.end_session(sid, EndReason.CLIENT_ENDED)


async def _end_connected(w: World) -> Op:
    iid = await w.instance(EU)
    s = (await w.broker.create_session("alice", [EU])).session
    assert s.epoch is not None
    await w.broker.client_event(EU, iid, s.session_id, s.epoch, connected=True)
    return lambda: w.broker.end_session(s.session_id, EndReason.CLIENT_ENDED)


async def _end_queued(w: World) -> Op:
    sid = (await w.broker.create_session("alice", [EU, EUW])).session.session_id
    return lambda: w.broker.end_session(sid, EndReason.CLIENT_ENDED)


async def _connect(w: World) -> Op:
    iid = await w.instance(EU)
    s = (await w.broker.create_session("alice", [EU])).session
    assert s.epoch is not None
    epoch = s.epoch
    return lambda: w.broker.client_event(EU, iid, s.session_id, epoch, connected=True)


async def _ready_serves_queue(w: World) -> Op:
    iid = await w.instance(EU, ready=False)
    await w.broker.create_session("alice", [EU, EUW])
    return lambda: w.broker.mark_ready(EU, iid)


async def _register_serves_queue(w: World) -> Op:
    await w.broker.create_session("alice", [EU, EUW])
    w.agents.append((EU, "i-late"))
    return lambda: w.broker.register_instance(EU, "i-late", "127.11.0.99", ready=True)


async def _drain_force(w: World) -> Op:
    iid = await w.instance(EU)
    await w.broker.create_session("alice", [EU])
    return lambda: w.broker.drain(EU, iid, force=True)


async def _terminate(w: World) -> Op:
    iid = await w.instance(EU)
    await w.broker.create_session("alice", [EU])
    return lambda: w.broker.terminate(EU, iid)


async def _reap_claim_expiry(w: World) -> Op:
    await w.instance(EU)
    await w.broker.create_session("alice", [EU])
    await w.broker.create_session("bob", [EU])  # waits; served when alice's claim expires
    w.clock.advance(SETTINGS.claim_ttl_s + 1)
    for region, iid in w.agents:
        await beat(w.broker, region, iid)
    return lambda: w.broker.reap(EU)


async def _lose_silent(w: World, *, connected: bool) -> Op:
    """An agent dies (not in `w.agents`: it never heartbeats again) while its
    session is placed; another waits; the reaper's pass that finds it lost
    re-places the session (head of the queue, served by the spare instance)."""
    await w.broker.register_instance(EU, "i-dead", "127.11.0.99", ready=True)
    s = (await w.broker.create_session("alice", [EU, EUW])).session
    assert s.epoch is not None
    if connected:
        await w.broker.client_event(EU, "i-dead", s.session_id, s.epoch, connected=True)
    await w.broker.create_session("bob", [EU])  # waits behind alice's re-placement
    await w.instance(EUW)
    for region in w.broker.regions:
        await w.broker.reap(region)
    for _ in range(3):  # 3 missed heartbeats of 5 s, watched every period
        w.clock.advance(PERIOD_S)
        for region, iid in w.agents:
            await beat(w.broker, region, iid)
        if _ < 2:
            await w.broker.reap(EUW)
            await w.broker.reap(EU)
    return lambda: w.broker.reap(EU)


async def _lose_assigned(w: World) -> Op:
    return await _lose_silent(w, connected=False)


async def _lose_connected(w: World) -> Op:
    return await _lose_silent(w, connected=True)


async def _renderer_crash(w: World) -> Op:
    iid = await w.instance(EU)
    s = (await w.broker.create_session("alice", [EU])).session
    assert s.epoch is not None
    epoch = s.epoch
    await w.broker.client_event(EU, iid, s.session_id, epoch, connected=True)
    return lambda: w.broker.replace_session(EU, iid, s.session_id, epoch)


async def _register_restarted(w: World) -> Op:
    iid = await w.instance(EU)
    await w.broker.create_session("alice", [EU])
    await w.instance(EU)  # a spare the re-placed session may take
    return lambda: w.broker.register_instance(EU, iid, "127.11.0.1")


async def _widen(w: World) -> Op:
    sid = (await w.broker.create_session("alice", [EU])).session.session_id
    return lambda: w.broker.widen_queue(sid, [EU, EUW])


SCENARIOS: dict[str, Callable[[World], Awaitable[Op]]] = {
    "create_assigned": _create_assigned,
    "create_fallback": _create_fallback,
    "create_queued": _create_queued,
    "end_assigned": _end_assigned,
    "end_connected": _end_connected,
    "end_queued": _end_queued,
    "connect": _connect,
    "ready_serves_queue": _ready_serves_queue,
    "register_serves_queue": _register_serves_queue,
    "drain_force": _drain_force,
    "terminate": _terminate,
    "reap_claim_expiry": _reap_claim_expiry,
    "widen_queue": _widen,
    "reap_lost_assigned": _lose_assigned,
    "reap_lost_connected": _lose_connected,
    "renderer_crash_replace": _renderer_crash,
    "register_restarted_agent": _register_restarted,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_every_crash_point_is_repaired_within_claim_ttl_and_a_period(
    broker: Broker, clock: ManualClock, scenario: str
) -> None:
    crash_points = 0
    for k in range(200):
        await flush(broker.redis)
        w = World(broker, clock)
        op = await SCENARIOS[scenario](w)
        with crash_after(broker, k):
            try:
                await op()
                done = True
            except Crash:
                done, crash_points = False, crash_points + 1
        await w.repair_window()
        where = f"{scenario}, crash after call {k}" if not done else f"{scenario}, no crash"
        await check_invariants(broker, settled=True)
        assert not await stranded(broker), where
        assert not await pending_follow_ups(broker), where
        for s in await all_sessions(broker):
            if s.state is SessionState.QUEUED:  # waiting in its queues, at its ticket
                assert s.ticket is not None, where
            elif s.state is SessionState.ENDED:
                assert s.end_reason is not None, where
        if done:
            break
    else:
        raise AssertionError(f"{scenario} never completed")
    assert crash_points >= 2, f"{scenario}: only {crash_points} crash points exercised"


async def test_a_create_that_died_after_its_ticket_keeps_its_place(
    broker: Broker, clock: ManualClock
) -> None:
    """Crash between enqueue and the queue adds: back at its original place,
    ahead of those who came after it."""
    for calls in range(30):  # the crash point right after session_enqueue wrote the ticket
        await flush(broker.redis)
        w = World(broker, clock)
        iid = await w.instance(EU, ready=False)
        await broker.create_session("first", [EU])
        with crash_after(broker, calls), pytest.raises(Crash):
            await broker.create_session("second", [EU])
        found = [s for s in await all_sessions(broker) if s.client_id == "second"]
        if found and found[0].ticket is not None:
            break
    else:
        raise AssertionError("no crash point between the ticket and the queue")
    ticket = found[0].ticket
    assert await broker.reads.queue_rank(EU, found[0].session_id) is None  # stranded now
    await broker.create_session("third", [EU])  # arrives after the crash
    clock.advance(SETTINGS.placing_grace_s + 1)
    await broker.reap(EU)
    queue = await broker.reads.queue_head(EU, 10)
    names = [(await broker.get_session(sid)).client_id for sid in queue]
    assert names == ["first", "second", "third"]
    assert (await w.session("second")).ticket == ticket
    # And it is served in that order.
    await broker.mark_ready(EU, iid)
    assert (await w.session("first")).state is SessionState.ASSIGNED


async def test_a_stranded_waiter_past_its_deadline_ends_as_queue_timeout(
    broker: Broker, clock: ManualClock
) -> None:
    with crash_after(broker, 2), pytest.raises(Crash):  # place (journaled), create; then died
        await broker.create_session("alice", [EU])
    [s] = await all_sessions(broker)
    assert s.state is SessionState.QUEUED and s.ticket is None
    clock.advance(SETTINGS.queue_timeout_s + 1)
    await broker.reap(EU)
    ended = await broker.get_session(s.session_id)
    assert (ended.state, ended.end_reason) == (SessionState.ENDED, EndReason.QUEUE_TIMEOUT)
    assert not await pending_follow_ups(broker)


async def test_reserved_instance_of_an_ended_session_is_released_in_one_pass(
    broker: Broker, clock: ManualClock
) -> None:
    """end_session died before releasing: the next pass releases, not the claim TTL."""
    w = World(broker, clock)
    iid = await w.instance(EU)
    s = (await broker.create_session("alice", [EU])).session
    with crash_after(broker, 1), pytest.raises(Crash):
        await broker.end_session(s.session_id, EndReason.CLIENT_ENDED)
    assert (await broker.instance_states(EU))[iid] is InstanceState.RESERVED
    await broker.reap(EU)
    assert (await broker.instance_states(EU))[iid] is InstanceState.RECYCLING


async def test_a_create_between_its_two_calls_is_not_raced_by_the_reaper(
    broker: Broker, clock: ManualClock
) -> None:
    """region_place reserves before session_create writes the session: a pass in
    between leaves the reservation alone (the create may be in flight); once
    it is older than the placing grace nobody will bind it, and it is handed back."""
    w = World(broker, clock)
    iid = await w.instance(EU)
    with crash_after(broker, 1), pytest.raises(Crash):  # region_place; then died
        await broker.create_session("alice", [EU])
    assert not await all_sessions(broker)
    await broker.reap(EU)
    assert (await broker.instance_states(EU))[iid] is InstanceState.RESERVED
    clock.advance(SETTINGS.placing_grace_s + 1)
    await beat(broker, EU, iid)
    await broker.reap(EU)
    assert (await broker.instance_states(EU))[iid] is InstanceState.RECYCLING
    await beat(broker, EU, iid)  # reset, ready again: the next create gets it
    assert (await broker.create_session("bob", [EU])).assigned
