"""The broker's contract, run against a single Redis and a Redis Cluster."""

from __future__ import annotations

import pytest

from control_plane.broker import Broker
from control_plane.clock import ManualClock
from control_plane.domain import (
    InvalidArgument,
    StaleEpoch,
    UnknownInstance,
    UnknownRegion,
    UnknownSession,
)
from streamfleet.lifecycle import EndReason, InstanceState, SessionState

EU, EUW, US = "eu-central-1", "eu-west-1", "us-east-1"


async def ready(broker: Broker, region: str, n: int, first_octet: int = 11) -> list[str]:
    ids = []
    for i in range(n):
        iid = f"i-{region}-{i}"
        await broker.register_instance(region, iid, f"127.{first_octet}.0.{i + 1}", ready=True)
        ids.append(iid)
    return ids


async def test_assign_gives_ready_instance_with_epoch_and_claim(
    broker: Broker, clock: ManualClock
) -> None:
    [iid] = await ready(broker, EU, 1)
    placed = await broker.create_session("alice", [EU, EUW], model="roadster")
    s = placed.session
    assert placed.assigned and not placed.existing
    assert (s.state, s.region, s.instance_id, s.private_ip, s.epoch) == (
        SessionState.ASSIGNED, EU, iid, "127.11.0.1", 1,
    )  # fmt: skip
    assert s.claim_deadline_ms == clock.ms + 90_000
    assert (await broker.snapshot(EU)).instances["reserved"] == 1


async def test_falls_back_to_next_region_then_queues(broker: Broker) -> None:
    await ready(broker, EUW, 1, 12)
    first = await broker.create_session("a", [EU, EUW])
    assert first.session.region == EUW
    second = await broker.create_session("b", [EU, EUW])
    assert second.session.state is SessionState.QUEUED
    assert second.position == 1 and second.estimated_wait_s is not None


async def test_create_is_idempotent_per_client(broker: Broker) -> None:
    await ready(broker, EU, 2)
    one = await broker.create_session("alice", [EU])
    two = await broker.create_session("alice", [EU])
    assert two.existing and two.session.session_id == one.session.session_id
    assert two.session.secret == one.session.secret
    assert (await broker.snapshot(EU)).instances["reserved"] == 1


async def test_end_recycles_then_ready_with_next_epoch(broker: Broker) -> None:
    [iid] = await ready(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    result = await broker.end_session(s.session_id, EndReason.CLIENT_ENDED)
    assert result.ended_now
    again = await broker.end_session(s.session_id, EndReason.CLIENT_ENDED)
    assert not again.ended_now and again.reason is EndReason.CLIENT_ENDED
    assert (await broker.instance_states(EU))[iid] is InstanceState.RECYCLING
    assert (await broker.create_session("bob", [EU])).session.state is SessionState.QUEUED
    reply = await broker.mark_ready(EU, iid)
    # The queued client is served the moment the instance is ready again.
    assert reply.state is InstanceState.RESERVED and reply.epoch == 2
    bob = (await broker.create_session("bob", [EU])).session
    assert bob.state is SessionState.ASSIGNED and bob.epoch == 2


async def test_queue_serves_in_arrival_order_across_regions(broker: Broker) -> None:
    a = (await broker.create_session("a", [EU, EUW])).session
    b = (await broker.create_session("b", [EUW])).session
    c = (await broker.create_session("c", [EU])).session
    assert (a.state, b.state, c.state) == (SessionState.QUEUED,) * 3
    await ready(broker, EUW, 1, 12)  # a arrived first and accepts eu-west-1
    assert (await broker.get_session(a.session_id)).region == EUW
    await ready(broker, EU, 1)  # a is served; c is next in eu-central-1
    assert (await broker.get_session(c.session_id)).state is SessionState.ASSIGNED
    assert (await broker.get_session(b.session_id)).state is SessionState.QUEUED
    # a left eu-central-1's queue when it was served elsewhere.
    assert (await broker.snapshot(EU)).queue_depth == 0


async def test_new_arrivals_do_not_jump_the_queue(broker: Broker) -> None:
    waiting = (await broker.create_session("w", [EU])).session
    [iid] = await ready(broker, EU, 1)
    assert (await broker.get_session(waiting.session_id)).instance_id == iid
    late = await broker.create_session("late", [EU])
    assert late.session.state is SessionState.QUEUED


async def test_claim_expiry_ends_session_and_recycles(broker: Broker, clock: ManualClock) -> None:
    [iid] = await ready(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    for _ in range(9):  # the agent stays alive, the client never comes
        clock.advance(10)
        await broker.heartbeat(EU, iid, InstanceState.RESERVED, s.session_id, s.epoch)
    clock.advance(1)
    report = await broker.reap(EU)
    assert report.ended == {"claim_expired": 1}
    ended = await broker.get_session(s.session_id)
    assert (ended.state, ended.end_reason) == (SessionState.ENDED, EndReason.CLAIM_EXPIRED)
    assert (await broker.instance_states(EU))[iid] is InstanceState.RECYCLING


async def test_reconnect_window(broker: Broker, clock: ManualClock) -> None:
    [iid] = await ready(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    assert s.epoch is not None
    await broker.client_event(EU, iid, s.session_id, s.epoch, connected=True)
    await broker.client_event(EU, iid, s.session_id, s.epoch, connected=False)
    clock.advance(30)
    await broker.heartbeat(EU, iid, InstanceState.STREAMING, s.session_id, s.epoch)
    await broker.client_event(EU, iid, s.session_id, s.epoch, connected=True)  # back in time
    clock.advance(40)
    await broker.heartbeat(EU, iid, InstanceState.STREAMING, s.session_id, s.epoch)
    await broker.reap(EU)
    assert (await broker.get_session(s.session_id)).state is SessionState.CONNECTED
    await broker.client_event(EU, iid, s.session_id, s.epoch, connected=False)
    for _ in range(6):
        clock.advance(10)
        await broker.heartbeat(EU, iid, InstanceState.STREAMING, s.session_id, s.epoch)
    clock.advance(1)
    await broker.reap(EU)
    gone = await broker.get_session(s.session_id)
    assert (gone.state, gone.end_reason) == (SessionState.ENDED, EndReason.DISCONNECTED)


async def test_lost_instance_re_queues_its_session_and_comes_back_through_recycling(
    broker: Broker, clock: ManualClock
) -> None:
    [iid] = await ready(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    await broker.reap(EU)
    for _ in range(2):  # the reaper watches every 5 s; 3 missed heartbeats of 5 s
        clock.advance(5)
        await broker.reap(EU)
        assert (await broker.get_session(s.session_id)).state is SessionState.ASSIGNED
    clock.advance(5)
    await broker.reap(EU)
    lost = await broker.get_session(s.session_id)  # re-placed: waits for capacity
    assert (lost.state, lost.replaced) == (SessionState.QUEUED, 1)
    assert (await broker.instance_states(EU))[iid] is InstanceState.LOST
    reply = await broker.heartbeat(EU, iid, InstanceState.READY)
    assert reply.state is InstanceState.RESERVED and reply.session_id == s.session_id


async def test_stale_instance_is_not_assignable(broker: Broker, clock: ManualClock) -> None:
    await ready(broker, EU, 1)
    clock.advance(20)
    assert (await broker.create_session("alice", [EU])).session.state is SessionState.QUEUED


async def test_drain(broker: Broker) -> None:
    a, b, c = await ready(broker, EU, 3)
    assert await broker.drain(EU, a) is InstanceState.DRAINING
    s1 = (await broker.create_session("s1", [EU])).session
    s2 = (await broker.create_session("s2", [EU])).session
    assert {s1.instance_id, s2.instance_id} == {b, c}
    assert s1.instance_id is not None and s2.instance_id is not None
    # Graceful: keeps serving, drains when the session ends; heartbeat says so.
    assert await broker.drain(EU, s1.instance_id) is InstanceState.RESERVED
    reply = await broker.heartbeat(
        EU, s1.instance_id, InstanceState.RESERVED, s1.session_id, s1.epoch
    )
    assert "drain" in reply.commands
    await broker.end_session(s1.session_id, EndReason.CLIENT_ENDED)
    assert (await broker.instance_states(EU))[s1.instance_id] is InstanceState.DRAINING
    # Forced: the session ends as drained now.
    await broker.drain(EU, s2.instance_id, force=True)
    ended = await broker.get_session(s2.session_id)
    assert ended.end_reason is EndReason.DRAINED


async def test_terminate_serving_instance_re_places_its_session(broker: Broker) -> None:
    a, b = await ready(broker, EU, 2)
    s = (await broker.create_session("alice", [EU])).session
    assert s.instance_id == a
    await broker.terminate(EU, a)  # a spot reclaim: the instance went away under it
    moved = await broker.get_session(s.session_id)
    assert (moved.state, moved.instance_id, moved.replaced) == (SessionState.ASSIGNED, b, 1)
    assert (await broker.instance_states(EU))[a] is InstanceState.TERMINATED


async def test_queue_timeout(broker: Broker, clock: ManualClock) -> None:
    s = (await broker.create_session("alice", [EU, EUW])).session
    clock.advance(601)
    await broker.reap(EU)
    ended = await broker.get_session(s.session_id)
    assert (ended.state, ended.end_reason) == (SessionState.ENDED, EndReason.QUEUE_TIMEOUT)
    assert (await broker.snapshot(EUW)).queue_depth == 0


async def test_widen_queue_lets_a_waiting_session_take_another_region(broker: Broker) -> None:
    s = (await broker.create_session("alice", [EU], queue_regions=[EU])).session
    await ready(broker, US, 1, 13)
    assert (await broker.get_session(s.session_id)).state is SessionState.QUEUED
    await broker.widen_queue(s.session_id, [US])
    assert (await broker.get_session(s.session_id)).region == US


async def test_heartbeat_tells_agent_to_end_a_session_it_no_longer_holds(broker: Broker) -> None:
    [iid] = await ready(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    await broker.end_session(s.session_id, EndReason.CLIENT_ENDED)
    reply = await broker.heartbeat(EU, iid, InstanceState.STREAMING, s.session_id, s.epoch)
    assert reply.commands == ("end_session",) and reply.session_id is None


async def test_stale_epoch_is_refused(broker: Broker) -> None:
    [iid] = await ready(broker, EU, 1)
    s = (await broker.create_session("alice", [EU])).session
    assert s.epoch == 1
    with pytest.raises(StaleEpoch):
        await broker.client_event(EU, iid, s.session_id, 0, connected=True)
    with pytest.raises(StaleEpoch):
        await broker.end_session(s.session_id, EndReason.IDLE, epoch=2)
    assert (await broker.get_session(s.session_id)).state is SessionState.ASSIGNED


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda b: b.create_session("", [EU]), InvalidArgument, "client_id"),
        (lambda b: b.create_session("x" * 129, [EU]), InvalidArgument, "client_id"),
        (lambda b: b.create_session("a b", [EU]), InvalidArgument, "client_id"),
        (lambda b: b.create_session("alice", []), InvalidArgument, "regions"),
        (lambda b: b.create_session("alice", ["mars-north-1"]), UnknownRegion, "region"),
        (lambda b: b.get_session("nope"), UnknownSession, "session_id"),
        (lambda b: b.get_session("0" * 32 + "-" + "0" * 16), UnknownSession, "session_id"),
        (
            lambda b: b.end_session("0" * 32 + "-" + "0" * 16, EndReason.IDLE),
            UnknownSession,
            "session_id",
        ),
        (lambda b: b.register_instance(EU, "i/../x", "127.11.0.1"), InvalidArgument, "instance_id"),
        (lambda b: b.register_instance(EU, "i-1", "127.011.0.1"), InvalidArgument, "private_ip"),
        (lambda b: b.heartbeat(EU, "i-never", InstanceState.READY), UnknownInstance, "instance_id"),
        (lambda b: b.drain(EU, "i-never"), UnknownInstance, "instance_id"),
    ],
)
async def test_bad_arguments_give_typed_errors_and_change_nothing(
    broker: Broker, call: object, error: type[Exception], field: str
) -> None:
    [iid] = await ready(broker, EU, 1)
    before = await broker.snapshot(EU)
    with pytest.raises(error) as info:
        await call(broker)  # type: ignore[operator]
    assert getattr(info.value, "field", None) == field
    assert await broker.snapshot(EU) == before
    assert (await broker.instance_states(EU))[iid] is InstanceState.READY
