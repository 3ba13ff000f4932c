"""Wait estimates follow the rate at which queue heads are really served
(control_plane/queue_estimate.py over the served log in control_plane/broker/reads.py)."""

from __future__ import annotations

from control_plane.broker import Broker
from control_plane.clock import ManualClock
from streamfleet.lifecycle import EndReason, SessionState

EU = "eu-central-1"
HOLD_S = 10.0


async def test_estimate_follows_the_observed_service_rate(
    broker: Broker, clock: ManualClock
) -> None:
    await broker.register_instance(EU, "i-one", "127.11.0.1", ready=True)
    holder = (await broker.create_session("holder", [EU])).session
    waiting = [(await broker.create_session(f"w{n}", [EU])).session for n in range(6)]
    assert {s.state for s in waiting} == {SessionState.QUEUED}
    # Nothing served yet: the capacity fallback (avg_session_s = 300 s, one instance).
    assert await broker.queue_position(waiting[0]) == (1, 300)

    # One instance, each session held HOLD_S: a queue head every HOLD_S seconds.
    current = holder
    for served in waiting[:3]:
        clock.advance(HOLD_S)
        await broker.end_session(current.session_id, EndReason.CLIENT_ENDED)
        await broker.mark_ready(EU, "i-one")
        current = await broker.get_session(served.session_id)
        assert current.state is SessionState.ASSIGNED

    clock.advance(1.0)
    rest = [await broker.get_session(s.session_id) for s in waiting[3:]]
    # 3 serves, 2 gaps of 10 s: one head per 10 s, read 1 s after the last.
    assert [await broker.queue_position(s) for s in rest] == [(1, 10), (2, 20), (3, 30)]
    # Nothing served for a long while: the estimate grows instead of standing still
    # (61 s since the last serve, 51 beyond a 10 s gap: 2 gaps over 71 s).
    clock.advance(60.0)
    assert await broker.queue_position(rest[0]) == (1, 36)


async def test_served_history_is_trimmed_to_the_window(broker: Broker, clock: ManualClock) -> None:
    window_ms = int(broker.settings.queue_rate_window_s * 1000)
    for n in range(3):
        await broker.reads.record_served(EU, f"s{n}", clock.ms + n * 1000, window_ms)
    start = clock.ms
    clock.advance((window_ms + 5_000) / 1000)
    await broker.reads.record_served(EU, "late", start + window_ms + 5_000, window_ms)
    got = (await broker.reads.queue_feed(EU, "", window_ms, max_members=0)).window
    assert (got.count, got.oldest_age_s, got.newest_age_s) == (1, 0.0, 0.0)
