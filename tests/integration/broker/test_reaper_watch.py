"""Lost-instance detection that a pause cannot fool, and the retention of
lost and terminated instances (docs/operations.md, "Process crashes and pauses")."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane import keys
from control_plane.broker import Broker
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock
from streamfleet.lifecycle import InstanceState, SessionState

from .crash import beat

EU = "eu-central-1"
SETTINGS = BrokerSettings(
    claim_ttl_s=30, heartbeat_interval_s=5, missed_heartbeats=3, watch_gap_s=5,
    instance_retention_s=60,
)  # fmt: skip


@pytest.fixture
def settings() -> BrokerSettings:
    return SETTINGS


async def fleet(broker: Broker, n: int) -> list[str]:
    ids = [f"i-{k}" for k in range(n)]
    for k, iid in enumerate(ids):
        await broker.register_instance(EU, iid, f"127.11.0.{k + 1}", ready=True)
    return ids


async def watch(broker: Broker, clock: ManualClock, seconds: int, beating: list[str]) -> None:
    """The reaper runs every 5 s while the `beating` agents heartbeat."""
    for _ in range(seconds // 5):
        clock.advance(5)
        for iid in beating:
            await beat(broker, EU, iid)
        await broker.reap(EU)


async def test_a_paused_reaper_does_not_declare_live_instances_lost(
    broker: Broker, clock: ManualClock
) -> None:
    a, b, c = await fleet(broker, 3)
    s = (await broker.create_session("alice", [EU])).session
    assert s.instance_id == a and s.epoch is not None
    await broker.client_event(EU, a, s.session_id, s.epoch, connected=True)
    await watch(broker, clock, 10, [a, b, c])
    # The control plane stops for 3x the heartbeat timeout: no pass, and the
    # agents' heartbeats (sent to it) are not accepted either.
    clock.advance(3 * SETTINGS.lost_after_s)
    await broker.reap(EU)
    states = await broker.instance_states(EU)
    assert states == {a: InstanceState.STREAMING, b: InstanceState.READY, c: InstanceState.READY}
    assert (await broker.get_session(s.session_id)).state is SessionState.CONNECTED
    # Resumed: a and b heartbeat again, c really is dead. c gets a full
    # heartbeat timeout of watched time, then is lost; the others never are.
    await watch(broker, clock, 10, [a, b])
    assert (await broker.instance_states(EU))[c] is InstanceState.READY
    await watch(broker, clock, 10, [a, b])
    states = await broker.instance_states(EU)
    assert states == {a: InstanceState.STREAMING, b: InstanceState.READY, c: InstanceState.LOST}
    assert (await broker.get_session(s.session_id)).state is SessionState.CONNECTED


async def test_a_pause_of_one_replica_does_not_stop_the_watch(
    broker: Broker, clock: ManualClock, redis_client: object
) -> None:
    """The gap is the region's, over every replica: while one replica is paused
    the others reap, so a silent instance is lost on time."""
    a, b = await fleet(broker, 2)
    paused = Broker(redis_client, broker.regions, SETTINGS, clock)
    await paused.reap(EU)  # both replicas watch from here
    await watch(broker, clock, 10, [a])  # then only `broker` reaps for 10 s
    clock.advance(5)
    await beat(broker, EU, a)
    await paused.reap(EU)  # `paused` resumes 15 s after its last pass
    assert (await broker.instance_states(EU)) == {a: InstanceState.READY, b: InstanceState.LOST}


async def test_lost_and_terminated_instances_are_forgotten_after_the_retention(
    broker: Broker, clock: ManualClock
) -> None:
    live, silent, gone = await fleet(broker, 3)
    await broker.terminate(EU, gone)
    await broker.reap(EU)
    await watch(broker, clock, 20, [live])
    assert (await broker.instance_states(EU)) == {
        live: InstanceState.READY, silent: InstanceState.LOST, gone: InstanceState.TERMINATED,
    }  # fmt: skip
    await watch(broker, clock, 40, [live])  # the terminated one's retention (60 s) ends
    assert set(await broker.instance_states(EU)) == {live, silent}
    await watch(broker, clock, 20, [live])  # and the lost one's
    assert set(await broker.instance_states(EU)) == {live}
    assert [r.instance_id for r in await broker.instance_details(EU)] == [live]
    assert (await broker.snapshot(EU)).instances["lost"] == 0
    # Nothing of theirs is left in any region key.
    r: Any = broker.redis
    for name in keys.region_keys(EU):
        kind = (await r.type(name)).decode()
        if kind == "hash":
            fields = await r.hkeys(name)
        elif kind == "zset":
            fields = await r.zrange(name, 0, -1)
        else:
            continue
        left = [f.decode() for f in fields if f.decode().startswith((silent, gone))]
        assert not left, (name, left)
    # A forgotten lost instance that comes back registers as new.
    await broker.register_instance(EU, silent, "127.11.0.2", ready=True)
    assert (await broker.instance_states(EU))[silent] is InstanceState.READY


async def test_a_reused_ip_shows_one_instance(broker: Broker, clock: ManualClock) -> None:
    old_t, old_l, live = await fleet(broker, 3)
    await broker.terminate(EU, old_t)
    await broker.reap(EU)
    await watch(broker, clock, 20, [live])  # old_l goes silent: lost
    assert (await broker.instance_states(EU))[old_l] is InstanceState.LOST
    # The cloud hands both addresses to replacements before the retention ends.
    await broker.register_instance(EU, "i-new-t", "127.11.0.1", ready=True)
    await broker.register_instance(EU, "i-new-l", "127.11.0.2", ready=True)
    states = await broker.instance_states(EU)
    assert states[old_l] is InstanceState.TERMINATED  # its IP went to an attested newcomer
    rows = await broker.instance_details(EU)
    by_ip = {r.private_ip: r.instance_id for r in rows}
    assert len(rows) == len(by_ip) == 3
    assert by_ip == {"127.11.0.1": "i-new-t", "127.11.0.2": "i-new-l", "127.11.0.3": live}


async def test_ordinary_passes_never_look_like_a_pause(broker: Broker, clock: ManualClock) -> None:
    """A replica that reaps every 4 s (passes up to 8 s apart, above the 5 s
    gap) still declares a silent instance lost: the gap is two periods at least."""
    live, silent = await fleet(broker, 2)
    await broker.reap(EU, 4.0)
    for _ in range(3):
        clock.advance(6)
        await beat(broker, EU, live)
        await broker.reap(EU, 4.0)
    assert (await broker.instance_states(EU)) == {
        live: InstanceState.READY, silent: InstanceState.LOST,
    }  # fmt: skip
