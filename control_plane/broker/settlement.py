"""Ending sessions and settling what regions owe the session side.

A change that spans a region and a session (two hash slots) is two script
calls. The region's script records the session-side follow-up in its outbox
atomically; `settle` finishes it (idempotent) and strikes it off, whether the
caller does it at once or the reaper does it for a crashed caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from control_plane.broker import outbox, replies
from control_plane.broker.outbox import (
    BindEntry,
    EndEntry,
    OutboxEntry,
    RebuildEntry,
    RequeueEntry,
)
from control_plane.broker.reads import Reads
from control_plane.broker.store import Store, ms
from control_plane.domain import EndResult, NotServed, StaleEpoch, UnknownSession
from streamfleet.ids import is_session_id
from streamfleet.lifecycle import EndReason, SessionState


class BrokerObserver(Protocol):
    """Told about outcomes as they happen (metrics); must not block."""

    def session_ended(self, reason: EndReason) -> None: ...

    def queue_served(self, wait_s: float) -> None: ...

    def session_replaced(self) -> None: ...


class NoObserver:
    def session_ended(self, reason: EndReason) -> None:
        pass

    def queue_served(self, wait_s: float) -> None:
        pass

    def session_replaced(self) -> None:
        pass


# session id -> the secret its user holds (control_plane/session_secrets.py).
SecretMinter = Callable[[str], str]
# (region it lost its instance in, session id) -> placed again or queued
# (Sessions.replace; Sessions is built on Settlement, so the Broker wires it).
Replacer = Callable[[str, str], Awaitable[None]]


class Settlement:
    def __init__(
        self, store: Store, reads: Reads, observer: BrokerObserver, mint_secret: SecretMinter
    ) -> None:
        self.store = store
        self.reads = reads
        self.observer = observer
        self.mint_secret = mint_secret
        self.replacer: Replacer | None = None

    async def end_session(
        self,
        session_id: str,
        reason: EndReason,
        *,
        epoch: int | None = None,
        required_state: SessionState | None = None,
        served_by: tuple[str, str] | None = None,
    ) -> EndResult:
        """End a live session (idempotent). With `epoch`, only that assignment; with
        `served_by` (region, instance id), only if that instance serves it (an agent)."""
        if not is_session_id(session_id):
            raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
        got = await self.store.end(session_id, reason, epoch, required_state, served_by)
        if isinstance(got, replies.NotEnded):
            if got.state == "unknown":
                raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
            if got.state == "not_served":
                raise NotServed(f"this instance does not serve session {session_id}",
                                field="session_id")  # fmt: skip
            if got.state == "stale_epoch":
                raise StaleEpoch(f"session {session_id} is not at epoch {epoch}", field="epoch")
            return EndResult(False, got.session_state, got.prior_reason)
        self.observer.session_ended(reason)
        if got.region and got.instance_id and got.epoch is not None:
            await self.release(got.region, got.instance_id, session_id, got.epoch, to_ready=False)
        for region in got.queue_regions:
            if region in self.store.region_keys:
                await self.store.queue_remove(region, session_id)
        return EndResult(True, SessionState.ENDED, reason)

    async def release(self, region: str, iid: str, sid: str, epoch: int, *, to_ready: bool) -> None:
        got = await self.store.release(region, iid, sid, epoch, to_ready=to_ready)
        if got.ok:
            await self.settle(region, [got.entry])

    async def dispatch(self, region: str, max_assignments: int = 100) -> int:
        """Serve this region's queue with its ready instances; returns binds made."""
        return await self.settle(region, await self.store.dispatch(region, max_assignments))

    async def settle(self, region: str, entries: Iterable[OutboxEntry | None]) -> int:
        """Finish outbox follow-ups (idempotent), then strike them off; returns binds made."""
        bound = 0
        for entry in entries:
            if entry is None:
                continue
            if isinstance(entry, BindEntry):
                bound += await self._bind(region, entry)
            elif isinstance(entry, RebuildEntry):
                await self._rebuild(region, entry)
            elif isinstance(entry, RequeueEntry):
                bound += await self._requeue(region, entry)
            else:
                await self._end(entry)
            await self.reads.strike_outbox(region, outbox.encode(entry))
        return bound

    async def _bind(self, region: str, e: BindEntry) -> int:
        got = await self.store.bind(
            e.session_id, region, e.instance_id, e.private_ip, e.epoch, e.claim_deadline_ms
        )
        if got.ok:
            await self._leave_other_queues(e.session_id, region)
            return 1
        if got.why != "assigned" or not await self._bound_to(e):
            await self.release(region, e.instance_id, e.session_id, e.epoch, to_ready=True)
        else:  # bound by a caller that died before leaving its other queues
            await self._leave_other_queues(e.session_id, region, count=False)
        return 0

    async def _rebuild(self, region: str, e: RebuildEntry) -> None:
        """The session side of a session an agent still serves after Redis lost data."""
        got = await self.store.rebuild(e.session_id, region, e, self.mint_secret(e.session_id))
        if not got.ok:
            # It ended meanwhile, or moved on: the instance is handed back and
            # the agent's next heartbeat is told to end it.
            await self.release(region, e.instance_id, e.session_id, e.epoch, to_ready=False)
            return
        if got.displaced is not None:
            # Another agent's report of it lost to this one (its player is here).
            region_, iid, epoch = got.displaced
            if region_ in self.store.region_keys:
                await self.release(region_, iid, e.session_id, epoch, to_ready=False)
        if got.had is SessionState.QUEUED:
            session = await self.reads.session(e.session_id)
            for other in session.queue_regions if session else ():
                if other in self.store.region_keys:
                    await self.store.queue_remove(other, e.session_id)

    async def _requeue(self, region: str, e: RequeueEntry) -> int:
        """The session side of a lost instance: back to queued (idempotent per
        epoch, so a crashed caller's repeat goes on from here), then placed as a
        repeated create would place it, ahead of every new arrival; after
        `max_replacements` it ends as instance_lost. Returns binds made (0/1)."""
        got = await self.store.requeue(e.session_id, e.instance_id, e.epoch)
        if not got.ok:
            if got.why == "limit":
                with contextlib.suppress(StaleEpoch, UnknownSession, NotServed):
                    await self.end_session(
                        e.session_id, EndReason.INSTANCE_LOST, epoch=e.epoch,
                        served_by=(region, e.instance_id),
                    )  # fmt: skip
            return 0  # ended or moved on meanwhile: nothing is owed
        if got.fresh:
            self.observer.session_replaced()
        if self.replacer is None:
            return 0
        await self.replacer(region, e.session_id)
        s = await self.reads.session(e.session_id)
        return int(s is not None and s.state is SessionState.ASSIGNED)

    async def _end(self, e: EndEntry) -> None:
        required = SessionState.QUEUED if e.reason is EndReason.QUEUE_TIMEOUT else None
        # Stale or unknown: the session already moved on; nothing is owed.
        with contextlib.suppress(StaleEpoch, UnknownSession):
            await self.end_session(e.session_id, e.reason, epoch=e.epoch, required_state=required)

    async def _bound_to(self, e: BindEntry) -> bool:
        s = await self.reads.session(e.session_id)
        return s is not None and s.instance_id == e.instance_id and s.epoch == e.epoch

    async def _leave_other_queues(self, sid: str, served_in: str, *, count: bool = True) -> None:
        session = await self.reads.session(sid)
        if session is None:
            return
        if count:
            now = await self.reads.now_ms()
            waited_since = session.requeued_ms or session.created_ms  # a re-placement waits anew
            self.observer.queue_served(max(0.0, (now - waited_since) / 1000))
            window_ms = ms(self.store.settings.queue_rate_window_s)
            await self.reads.record_served(served_in, sid, now, window_ms)
        for region in session.queue_regions:
            if region != served_in and region in self.store.region_keys:
                await self.store.queue_remove(region, sid)
