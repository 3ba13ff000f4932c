"""Placing sessions: create (idempotent per client), reserve in the first
region of the ranking with a ready instance, else queue in arrival order."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from control_plane.broker import placing
from control_plane.broker.placing import Placing
from control_plane.broker.reads import Reads
from control_plane.broker.replies import NotPlaced, Reserved
from control_plane.broker.settlement import Settlement
from control_plane.broker.store import RateLimit, Store, ms
from control_plane.domain import (
    InvalidArgument,
    Placement,
    RateLimited,
    Session,
    SessionNotLive,
    UnknownSession,
    check_client_id,
)
from control_plane.keys import new_session_id
from control_plane.queue_estimate import ServedWindow, serving_soon, standing
from control_plane.session_secrets import SessionFacts
from streamfleet.ids import is_session_id
from streamfleet.lifecycle import LIVE_SESSION_STATES, EndReason, SessionState

# A new session's facts -> the secret its user holds (s2: the facts signed in,
# control_plane/session_secrets.py).
SessionMinter = Callable[[SessionFacts], str]


class Sessions:
    def __init__(
        self, store: Store, reads: Reads, settlement: Settlement, mint_session: SessionMinter
    ) -> None:
        self.store = store
        self.reads = reads
        self.settlement = settlement
        self.mint_session = mint_session

    def _minted_ms(self) -> int:
        """The creation time signed into a secret: the injected clock, else this
        host's (it orders rebuilt sessions and bounds their age; the stored
        created_ms stays Redis TIME)."""
        return int(self.store.now() or time.time() * 1000)

    async def create_session(
        self,
        client_id: str,
        regions: Sequence[str],
        *,
        queue_regions: Sequence[str] | None = None,
        relax_to: Sequence[str] | None = None,
        model: str = "",
        configuration: dict[str, Any] | None = None,
        rate: RateLimit | None = None,
    ) -> Placement:
        """Place a client: first region (in the given order) with a ready
        instance, else queue it in `queue_regions` (default: `regions`).
        `relax_to` is where it may also wait once a policy relaxes; it is kept
        as the session's `regions`. `rate` (bucket, allowed, window ms): the
        request is counted against that budget first (RateLimited when spent).

        The common case is two round trips: region_place (rate limit, arrival,
        reservation) then session_create (created already bound). A crash
        between them leaves only a reservation nobody holds a token for; its
        claim expiry (or the streaming repair) hands it back."""
        check_client_id(client_id)
        if not regions:
            raise InvalidArgument("at least one region is required", field="regions")
        for region in (*regions, *(queue_regions or ()), *(relax_to or ())):
            self.store.rkeys(region)
        waits_in = tuple(queue_regions) if queue_regions is not None else tuple(regions)
        kept_regions = tuple(relax_to or regions)
        config_json = json.dumps(configuration or {}, separators=(",", ":"))
        # A repeat that finds the client's session just as it ends creates a
        # fresh one instead of answering with the ended session (bounded).
        existing: Session | None = None
        for attempt in range(3):
            sid = new_session_id(client_id)
            secret = self.mint_session(
                SessionFacts(
                    sid,
                    client_id,
                    self._minted_ms(),
                    tuple(regions),
                    waits_in,
                    kept_regions,
                    model,
                    config_json,
                )
            )
            journal = placing.encode(Placing(sid, tuple(regions), waits_in))
            rate_now = rate if attempt == 0 else None
            where, got = await self._reserve_new(
                sid, regions, journal, rate_now, first=attempt == 0
            )
            bound = got if isinstance(got, Reserved) else None
            created = await self.store.create(
                sid, client_id, secret, kept_regions, model, config_json,
                bound=(where, bound) if bound else None,
            )  # fmt: skip
            if created.created and created.created_ms is not None:
                # Built from what we just wrote: the hot path reads nothing back.
                session = Session(
                    session_id=sid, client_id=client_id, secret=secret,
                    state=SessionState.QUEUED, regions=kept_regions,
                    created_ms=created.created_ms, model=model, configuration=config_json,
                    queue_deadline_ms=created.created_ms + ms(self.store.settings.queue_timeout_s),
                )  # fmt: skip
                if bound is not None:
                    assigned = dataclasses.replace(
                        session, state=SessionState.ASSIGNED, region=where,
                        instance_id=bound.instance_id, private_ip=bound.private_ip,
                        epoch=bound.epoch, claim_deadline_ms=bound.claim_deadline_ms,
                    )  # fmt: skip
                    return Placement(assigned, existing=False)
                # Queued: several calls follow; the journal (in `where`) covers them.
                try:
                    placed = await self._enqueue(session, waits_in, existing=False)
                except UnknownSession:
                    # Redis forgot it between our calls (a restart without
                    # persistence, a failover's lost writes): nobody holds its
                    # secret yet, so it is created afresh.
                    continue
                await self.reads.placing_done(where, journal)
                return placed
            # Nothing was written under `sid`: hand back what was taken for it.
            if bound is not None:
                await self.settlement.release(
                    where, bound.instance_id, sid, bound.epoch, to_ready=True
                )
            else:
                await self.reads.placing_done(where, journal)
            # Idempotent repeat: report the live session, and make sure a
            # waiting one is still placed (its first call may have crashed).
            existing = await self.reads.session(created.session_id)
            if existing is None or existing.state is SessionState.ENDED:
                continue
            if existing.state is SessionState.QUEUED:
                waits = existing.queue_regions or waits_in
                return await self._place(existing, regions, waits, existing=True)
            return Placement(existing, existing=True)
        if existing is None:
            raise UnknownSession("the client's session kept ending; try again", field="client_id")
        return Placement(existing, existing=True)

    async def _reserve_new(
        self, sid: str, regions: Sequence[str], journal: str, rate: RateLimit | None,
        *, first: bool,
    ) -> tuple[str, Reserved | NotPlaced]:  # fmt: skip
        """Reserve for a session not yet created, in the first region with capacity.
        The first call counts the request (rate limit, arrival); the last one,
        when nothing was reserved, journals the placement. Returns the region of
        the reservation, or of the journal entry."""
        last = len(regions) - 1
        got: Reserved | NotPlaced = NotPlaced("no_capacity")
        for i, region in enumerate(regions):
            got = await self.store.place(
                region, sid, journal=journal if i == last else "",
                rate=rate if i == 0 else None, count_arrival=first and i == 0,
            )  # fmt: skip
            if isinstance(got, NotPlaced) and got.rate_limited:
                raise RateLimited("too many requests", reset_ms=got.reset_ms)
            if isinstance(got, Reserved):
                return region, got
        return regions[last], got

    async def place_again(
        self, session: Session, regions: Sequence[str], waits_in: Sequence[str]
    ) -> Placement:
        """Place a queued session that exists already (a rebuilt one: its ticket is kept)."""
        return await self._place(session, regions, waits_in, existing=True)

    async def _place(
        self, session: Session, regions: Sequence[str], waits_in: Sequence[str], *, existing: bool
    ) -> Placement:
        sid = session.session_id
        for region in regions:
            got = await self.store.reserve(region, sid)
            if not isinstance(got, Reserved):
                continue
            iid, ip, epoch, deadline = (
                got.instance_id, got.private_ip, got.epoch, got.claim_deadline_ms
            )  # fmt: skip
            bound = await self.store.bind(sid, region, iid, ip, epoch, deadline)
            if not bound.ok:
                # Ended or placed by a concurrent call meanwhile: nobody touched this GPU.
                await self.settlement.release(region, iid, sid, epoch, to_ready=True)
                return Placement(await self.get_session(sid), existing=existing)
            assigned = dataclasses.replace(
                session, state=SessionState.ASSIGNED, region=region, instance_id=iid,
                private_ip=ip, epoch=epoch, claim_deadline_ms=deadline,
            )  # fmt: skip
            return Placement(assigned, existing=existing)
        return await self._enqueue(session, waits_in, existing=existing)

    async def _enqueue(
        self, session: Session, waits_in: Sequence[str], *, existing: bool
    ) -> Placement:
        sid = session.session_id
        ticket = session.ticket or await self.reads.next_ticket()
        got = await self.store.enqueue(sid, ticket, waits_in)
        if not got.ok:  # placed or ended by a concurrent call meanwhile
            return Placement(await self.get_session(sid), existing=existing)
        for region in waits_in:
            queued = await self.store.queue_add(region, sid, got.ticket, got.queue_deadline_ms)
            if queued.ready:
                await self.settlement.dispatch(region)
        current = await self.get_session(sid)
        if current.state is not SessionState.QUEUED:
            return Placement(current, existing=existing)
        position, wait = await self.queue_position(current)
        return Placement(current, existing=existing, position=position, estimated_wait_s=wait)

    async def resume_placement(self, entry: str) -> None:
        """Finish a placement whose caller stopped between its calls (the reaper,
        for a stale journal entry): a session still queued is placed as a repeated
        create would (its ticket, so its place, is kept), or ended as
        queue_timeout when its queue deadline has passed. Anything else is done."""
        p = placing.decode(entry)
        session = await self.reads.session(p.session_id) if p else None
        if p is None or session is None or session.state is not SessionState.QUEUED:
            return
        now = await self.reads.now_ms()
        if session.queue_deadline_ms is not None and now >= session.queue_deadline_ms:
            await self.settlement.end_session(
                p.session_id, EndReason.QUEUE_TIMEOUT, required_state=SessionState.QUEUED
            )
            return
        known = self.store.region_keys
        ranked = [r for r in p.ranked if r in known]
        waits = [r for r in (session.queue_regions or p.waits_in) if r in known]
        if not waits:  # the regions were reconfigured away: nothing can serve it here
            return
        await self._place(session, ranked, waits, existing=True)

    async def replace(self, lost_in: str, session_id: str) -> None:
        """Place a re-queued session again (Settlement._requeue): a ready instance
        in the region it lost its instance in first, then its ranking; else it
        waits in those queues, where its ticket puts it ahead of new arrivals."""
        session = await self.reads.session(session_id)
        if session is None or session.state is not SessionState.QUEUED:
            return
        known = self.store.region_keys
        ranked = [r for r in dict.fromkeys((lost_in, *session.regions)) if r in known]
        waiting = session.queue_regions or session.regions
        waits = [r for r in dict.fromkeys((lost_in, *waiting)) if r in known]
        await self._place(session, ranked, waits, existing=True)

    async def widen_queue(self, session_id: str, regions: Sequence[str]) -> None:
        """Let a waiting session also wait in more regions (a relaxed policy)."""
        session = await self.get_session(session_id)
        if session.state is not SessionState.QUEUED or session.ticket is None:
            return
        added = [r for r in regions if r not in session.queue_regions]
        if not added:
            return
        # Queues first, the session's record last: if this caller dies between
        # the calls, the record still lacks the regions and the next relax pass
        # adds them again (queue adds keep the first ticket and deadline).
        deadline = session.queue_deadline_ms or session.created_ms
        for region in added:
            await self.store.queue_add(region, session_id, session.ticket, deadline)
        got = await self.store.enqueue(session_id, session.ticket, (*session.queue_regions, *added))
        if not got.ok:
            return
        for region in added:
            await self.settlement.dispatch(region)

    async def queue_position(self, session: Session) -> tuple[int, int]:
        """1-based position (best over its regions) and an estimated wait in seconds."""
        settings = self.store.settings
        window_ms = ms(settings.queue_rate_window_s)
        ranks: list[int | None] = []
        capacity = 0
        windows: list[ServedWindow] = []
        for region in session.queue_regions:
            ranks.append(await self.reads.queue_rank(region, session.session_id))
            # What the waiting streams' feed reads too, without the queue itself.
            got = await self.reads.queue_feed(region, "", window_ms, max_members=0)
            capacity += serving_soon(got.counts)
            windows.append(got.window)
        return standing(ranks, capacity, windows, settings.avg_session_s)

    async def get_session(self, session_id: str) -> Session:
        session = await self.reads.session(session_id) if is_session_id(session_id) else None
        if session is None:
            raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
        return session

    async def require_live(self, session_id: str) -> Session:
        session = await self.get_session(session_id)
        if session.state not in LIVE_SESSION_STATES:
            raise SessionNotLive(f"session {session_id} has ended", field="session_id")
        return session
