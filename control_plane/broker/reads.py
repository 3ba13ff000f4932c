"""Plain Redis reads and small writes the broker needs beside its scripts:
sessions, queue ranks, region hashes for views, the clock, arrivals, leases.
Typed results; key names from control_plane/keys.py only.
"""

from __future__ import annotations

import dataclasses

from control_plane import keys
from control_plane.broker import replies
from control_plane.broker.outbox import OutboxEntry
from control_plane.broker.plumbing import Connection
from control_plane.clock import Clock
from control_plane.domain import Session
from streamfleet.lifecycle import EndReason, InstanceState, SessionState


class Reads:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock
        self._c = conn.client

    async def session(self, sid: str) -> Session | None:
        raw = await self.conn.run(self._c.hgetall(keys.session_keys(sid)[1]))
        return session_from_hash(sid, raw) if raw else None

    async def next_ticket(self) -> int:
        return await self.conn.run(self._c.incr(keys.ticket_key()))

    async def queue_rank(self, region: str, sid: str) -> int | None:
        return await self.conn.run(self._c.zrank(keys.region_key(region, "queue"), sid))

    async def queue_depth(self, region: str) -> int:
        return await self.conn.run(self._c.zcard(keys.region_key(region, "queue")))

    async def queue_head(self, region: str, count: int) -> list[str]:
        raw = await self.conn.run(self._c.zrange(keys.region_key(region, "queue"), 0, count - 1))
        return [replies.text(x) for x in raw]

    async def state_values(self, region: str) -> list[str]:
        return [
            replies.text(x)
            for x in await self.conn.run(self._c.hvals(keys.region_key(region, "state")))
        ]

    async def state_counts(self, region: str) -> dict[str, int]:
        """Instances per state (states with none left out), from the counters the
        scripts keep (one small hash, whatever the fleet size). Counters never
        completed (a store from before them, or one that lost them) are rebuilt
        first, once, from the state hash (region_recount)."""
        raw = await self.conn.run(self._c.hgetall(keys.region_key(region, "counts")))
        h = {replies.text(k): replies.text(v) for k, v in raw.items()}
        if h.pop("v", None) != "1":
            return replies.counts(
                await self.conn.script("region_recount", keys.region_keys(region), [])
            )
        return {state: n for state, n in ((s, replies.number(v)) for s, v in h.items()) if n}

    async def instance_state(self, region: str, iid: str) -> InstanceState | None:
        raw = await self.conn.run(self._c.hget(keys.region_key(region, "state"), iid))
        return InstanceState(replies.text(raw)) if raw is not None else None

    async def since(self, region: str, iid: str) -> int:
        """When the instance entered its state (ms; 0 when unknown)."""
        raw = await self.conn.run(self._c.hget(keys.region_key(region, "since"), iid))
        return replies.number(raw) if raw is not None else 0

    async def serving_page(self, region: str, count: int) -> dict[str, tuple[str, str, int]]:
        """One page of the region's serving instances, resumed where the last
        page ended (a cursor kept in the region's meta, so every replica's pass
        continues the same sweep): iid -> (session id, state, epoch). A small
        region comes back whole in one page."""
        meta = keys.region_key(region, "meta")
        raw_cursor = await self.conn.run(self._c.hget(meta, "repair_cursor"))
        cursor = replies.number(raw_cursor) if raw_cursor is not None else 0
        nxt, page = await self.conn.run(
            self._c.hscan(keys.region_key(region, "sess"), cursor, count=count)
        )
        await self.conn.run(self._c.hset(meta, mapping={"repair_cursor": str(nxt)}))
        serving = {replies.text(k): replies.text(v) for k, v in page.items()}
        if not serving:
            return {}
        iids = list(serving)
        states = await self.conn.run(self._c.hmget(keys.region_key(region, "state"), iids))
        epochs = await self.conn.run(self._c.hmget(keys.region_key(region, "epoch"), iids))
        return {
            iid: (serving[iid], replies.text(st) if st is not None else "",
                  replies.number(ep) if ep is not None else 0)
            for iid, st, ep in zip(iids, states, epochs, strict=True)
        }  # fmt: skip

    async def region_hash(self, region: str, name: str) -> dict[str, str]:
        raw = await self.conn.run(self._c.hgetall(keys.region_key(region, name)))
        return {replies.text(k): replies.text(v) for k, v in raw.items()}

    async def heartbeats(self, region: str) -> dict[str, float]:
        raw = await self.conn.run(
            self._c.zrange(keys.region_key(region, "hb"), 0, -1, withscores=True)
        )
        return {replies.text(k): float(v) for k, v in raw}

    async def set_meta(self, region: str, fields: dict[str, str]) -> None:
        await self.conn.run(self._c.hset(keys.region_key(region, "meta"), mapping=fields))

    async def stale_outbox(self, region: str, older_than_ms: int, limit: int) -> list[OutboxEntry]:
        raw = await self.conn.run(
            self._c.zrangebyscore(
                keys.region_key(region, "outbox"), "-inf", older_than_ms, 0, limit
            )
        )
        return replies.entries(raw)

    async def strike_outbox(self, region: str, entry_text: str) -> None:
        await self.conn.run(self._c.zrem(keys.region_key(region, "outbox"), entry_text))

    async def stale_placing(self, region: str, older_than_ms: int, limit: int) -> list[str]:
        raw = await self.conn.run(
            self._c.zrangebyscore(
                keys.region_key(region, "placing"), "-inf", older_than_ms, 0, limit
            )
        )
        return [replies.text(x) for x in raw]

    async def placing_add(self, region: str, entry: str, now_ms: int) -> None:
        """Journal a multi-call placement before its first write (a create's is written
        by region_place itself; a rebuild from a secret journals here)."""
        await self.conn.run(self._c.zadd(keys.region_key(region, "placing"), {entry: now_ms}))

    async def placing_done(self, region: str, entry: str) -> None:
        await self.conn.run(self._c.zrem(keys.region_key(region, "placing"), entry))

    async def now_ms(self) -> int:
        """The broker's clock: the injected one, else Redis TIME."""
        now = self.clock.now_arg()
        if now:
            return int(now)
        seconds, micros = await self.conn.run(self._c.time())
        return int(seconds) * 1000 + int(micros) // 1000

    async def arrivals(self, region: str) -> dict[int, int]:
        raw = await self.conn.run(self._c.hgetall(keys.region_key(region, "arrivals")))
        return {int(replies.text(k)): int(replies.text(v)) for k, v in raw.items()}

    async def forget_arrivals(self, region: str, minutes: list[int]) -> None:
        if minutes:
            await self.conn.run(
                self._c.hdel(keys.region_key(region, "arrivals"), *map(str, minutes))
            )

    # -- when each region served queue heads (queue wait estimates) ----------
    # One sorted set per region (member session id, score ms served), trimmed to
    # the window on every write and expiring with it; shared by every replica.

    async def record_served(self, region: str, sid: str, now_ms: int, window_ms: int) -> None:
        key = keys.region_key(region, "served")
        await self.conn.run(self._c.zadd(key, {sid: now_ms}))
        await self.conn.run(self._c.zremrangebyscore(key, "-inf", now_ms - window_ms))
        await self.conn.run(self._c.pexpire(key, window_ms))

    async def queue_feed(
        self, region: str, known_version: str, window_ms: int, max_members: int
    ) -> replies.Feed:
        """One call for every waiting client of a region (region_feed): the queue only
        when its version moved, the counts, the served window."""
        script_keys = [*keys.region_keys(region), keys.region_key(region, "served")]
        raw = await self.conn.script(
            "region_feed", script_keys, [known_version, self.clock.now_arg(), window_ms,
                                         max_members],
        )  # fmt: skip
        got = replies.feed(raw)
        if not got.counts_complete:  # counters never completed: rebuilt once, here
            return dataclasses.replace(
                got, counts=await self.state_counts(region), counts_complete=True
            )
        return got

    async def take_lease(self, region: str, lease_ms: int) -> bool:
        """A short per-region lease so N replicas do not all reap one region each period."""
        lease = keys.region_key(region, "meta") + ":reaper-lease"
        return bool(await self.conn.run(self._c.set(lease, "1", nx=True, px=lease_ms)))

    async def ping(self) -> None:
        await self.conn.run(self._c.ping())


def session_from_hash(session_id: str, raw: dict[bytes, bytes] | dict[str, str]) -> Session:
    """A session hash (HGETALL of keys.session_keys(sid)[1]) as a Session."""
    h = {replies.text(k): replies.text(v) for k, v in raw.items()}

    def opt_int(name: str) -> int | None:
        return replies.number(h[name]) if h.get(name) else None

    def csv(name: str) -> tuple[str, ...]:
        return tuple(x for x in h.get(name, "").split(",") if x)

    return Session(
        session_id=session_id,
        client_id=h["client_id"],
        secret=h["secret"],
        state=SessionState(h["state"]),
        regions=csv("regions"),
        created_ms=replies.number(h["created_ms"]),
        model=h.get("model", ""),
        configuration=h.get("configuration", "{}"),
        region=h.get("region") or None,
        instance_id=h.get("instance_id") or None,
        private_ip=h.get("private_ip") or None,
        epoch=opt_int("epoch"),
        claim_deadline_ms=opt_int("claim_deadline_ms"),
        queue_regions=csv("queue_regions"),
        queue_deadline_ms=opt_int("queue_deadline_ms"),
        ticket=opt_int("ticket"),
        replaced=opt_int("replaced") or 0,
        requeued_ms=opt_int("requeued_ms"),
        requeued_from=h.get("requeued_from") or None,
        end_reason=EndReason(h["end_reason"]) if h.get("end_reason") else None,
        ended_ms=opt_int("ended_ms"),
    )
