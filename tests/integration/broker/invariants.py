"""docs/design.md's invariants, checked against what is really in Redis."""

from __future__ import annotations

from collections import Counter
from typing import Any

from control_plane import keys
from control_plane.broker import Broker
from control_plane.domain import Session
from streamfleet.lifecycle import LIVE_SESSION_STATES, SERVING_INSTANCE_STATES, SessionState


async def all_sessions(broker: Broker) -> list[Session]:
    ids: set[str] = set()
    async for raw in broker.redis.scan_iter(match="sf:{c:*}:session:*", count=1000):
        ids.add((raw.decode() if isinstance(raw, bytes) else raw).rsplit(":", 1)[1])
    return [await broker.get_session(sid) for sid in sorted(ids)]


async def check_invariants(broker: Broker, *, settled: bool = False) -> dict[str, Any]:
    """Invariants 1 and 3 always; with `settled` (no caller mid-flight and the
    reaper has run past the claim TTL) also invariant 2: nothing leaks."""
    sessions = await all_sessions(broker)
    live = [s for s in sessions if s.state in LIVE_SESSION_STATES]
    placed = [s for s in live if s.state in (SessionState.ASSIGNED, SessionState.CONNECTED)]

    # 1. One live session per instance; one instance per session.
    on_instance = Counter((s.region, s.instance_id) for s in placed)
    doubles = [k for k, n in on_instance.items() if n > 1]
    assert not doubles, f"instances with two live sessions: {doubles}"
    # An instance serves a session when it holds it at the epoch the session is
    # bound to. A crashed caller's orphan reservation (never bound, so no token
    # exists for it) is a leak, not a second instance: invariant 2 repairs it.
    bound = {(s.region, s.instance_id, s.epoch): s.session_id for s in placed}
    serves: Counter[str] = Counter()
    for region in broker.regions:
        for iid, (sid, epoch) in (await broker.instance_sessions(region)).items():
            if bound.get((region, iid, epoch)) == sid:
                serves[sid] += 1
    assert all(n == 1 for n in serves.values()), serves.most_common(3)

    # 3. One live session per client: the session id embeds the client's hash
    # (control_plane/keys.py), which also holds for a session rebuilt from its
    # agent after Redis lost data (the agent never knew the client id).
    per_client = Counter(s.session_id.split("-", 1)[0] for s in live)
    assert all(n == 1 for n in per_client.values()), per_client.most_common(3)

    await check_counters(broker)

    if settled:
        # 2. Nothing leaks: serving instances and placed sessions match exactly.
        by_id = {s.session_id: s for s in placed}
        for region in broker.regions:
            states = await broker.instance_states(region)
            serving = await broker.instance_sessions(region)
            for iid, state in states.items():
                if state not in SERVING_INSTANCE_STATES:
                    continue
                sid, epoch = serving[iid]
                s = by_id.get(sid)
                assert s is not None, f"{region}/{iid} {state} serves non-live {sid}"
                assert (s.region, s.instance_id, s.epoch) == (region, iid, epoch)
        for s in placed:
            assert s.region is not None and s.instance_id is not None
            states = await broker.instance_states(s.region)
            assert states.get(s.instance_id) in SERVING_INSTANCE_STATES, f"{s} has no instance"
            sid, epoch = (await broker.instance_sessions(s.region))[s.instance_id]
            assert (sid, epoch) == (s.session_id, s.epoch)
        # 2. ... and no waiting session is stranded outside every queue.
        lost_waiters = await stranded(broker)
        assert not lost_waiters, f"queued in no queue: {lost_waiters}"
    return {"live": len(live), "placed": len(placed)}


# Both hashes in one read (same slot, one script), so a replica changing a
# state between two reads cannot make them disagree.
_COUNTS_AND_STATES = "return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}"


async def _counts_and_states(broker: Broker, region: str) -> tuple[dict[str, int], Counter[str]]:
    raw_counts, raw_states = await broker.redis.eval(
        _COUNTS_AND_STATES, 2, keys.region_key(region, "counts"), keys.region_key(region, "state")
    )
    pairs = zip(raw_counts[0::2], raw_counts[1::2], strict=True)
    return {k.decode(): int(v) for k, v in pairs}, Counter(v.decode() for v in raw_states[1::2])


async def check_counters(broker: Broker) -> None:
    """The per-state counters the scripts keep equal a full recount of the state
    hash. Counters never completed (a fresh or flushed store) are completed
    first, as the first view would, so what is compared is always the kept ones."""
    for region in broker.regions:
        kept, recount = await _counts_and_states(broker, region)
        if kept.get("v") != 1:
            await broker.reads.state_counts(region)
            kept, recount = await _counts_and_states(broker, region)
        assert kept.pop("v") == 1, region
        assert {s: n for s, n in kept.items() if n} == dict(recount), (region, kept, recount)


async def stranded(broker: Broker) -> list[str]:
    """Queued sessions that no queue holds: nobody would ever serve or end them."""
    out = []
    for s in await all_sessions(broker):
        if s.state is not SessionState.QUEUED:
            continue
        queued_in = [
            r for r in s.queue_regions if await broker.reads.queue_rank(r, s.session_id) is not None
        ]
        if s.ticket is None or not queued_in:
            out.append(s.session_id)
    return out


async def pending_follow_ups(broker: Broker) -> dict[str, int]:
    """Outbox entries and placement journal entries still open, per region."""
    out = {}
    for region in broker.regions:
        n = await broker.redis.zcard(keys.region_key(region, "outbox"))
        n += await broker.redis.zcard(keys.region_key(region, "placing"))
        if n:
            out[region] = n
    return out
