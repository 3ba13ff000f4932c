"""The reaper: expire what timed out, finish follow-ups crashed callers left,
repair leaks. Safe to run from several processes at once: every change is a
compare-and-set script."""

from __future__ import annotations

import logging

from control_plane.broker.outbox import EndEntry, RequeueEntry
from control_plane.broker.reads import Reads
from control_plane.broker.sessions import Sessions
from control_plane.broker.settlement import Settlement
from control_plane.broker.store import Store, ms
from control_plane.domain import BrokerError, ReapReport, StoreUnavailable
from streamfleet.lifecycle import InstanceState, SessionState

log = logging.getLogger("streamfleet.control_plane.reaper")


class Reaper:
    def __init__(
        self, store: Store, reads: Reads, settlement: Settlement, sessions: Sessions
    ) -> None:
        self.store = store
        self.reads = reads
        self.settlement = settlement
        self.sessions = sessions

    async def reap(self, region: str, period_s: float = 0.0) -> ReapReport:
        """Expire claims, reconnect windows, lost instances and queue deadlines,
        finish follow-ups that crashed callers left, repair leaks. `period_s`:
        how often the caller reaps (the watch gap is at least two periods)."""
        report = ReapReport()
        created = await self.store.reap(region, period_s)
        for entry in created:
            if isinstance(entry, EndEntry):
                report.count(entry.reason.value)
            else:
                report.count("replaced" if isinstance(entry, RequeueEntry) else "bind")
        report.binds += await self.settlement.settle(region, created)
        now = await self.reads.now_ms()
        cutoff = now - ms(self.store.settings.outbox_grace_s)
        stale = await self.reads.stale_outbox(region, cutoff, self.store.settings.reap_batch)
        report.binds += await self.settlement.settle(region, stale)
        await self._finish_placements(region, now - ms(self.store.settings.placing_grace_s))
        await self._repair_streaming(region, now - ms(self.store.settings.placing_grace_s))
        await self.settlement.dispatch(region)
        return report

    async def _finish_placements(self, region: str, cutoff: int) -> None:
        """Creates whose caller stopped between its calls (journal entries older
        than the placing grace): the session is placed or queued, never stranded."""
        batch = self.store.settings.reap_batch
        for entry in await self.reads.stale_placing(region, cutoff, batch):
            try:
                await self.sessions.resume_placement(entry)
            except StoreUnavailable:
                raise  # kept: the next pass tries again
            except BrokerError as exc:
                # A refusal that would repeat every pass must not stall the region.
                log.warning("placement %s not resumed: %s", entry.split("|")[0], exc)
            await self.reads.placing_done(region, entry)

    async def _repair_streaming(self, region: str, placed_before: int) -> None:
        """A streaming instance whose session ended (its release crashed) is
        released, and so is a reserved one whose session ended (a reservation
        whose session is still queued may be a create in flight: its claim
        expiry repairs it), or whose session does not exist and was reserved
        before `placed_before` (a create reserves before it creates the session:
        younger ones may be in flight); a session the instance serves but that
        still says assigned (its connect crashed) is marked connected."""
        # Incremental: one page of the serving instances per pass (a cursor), so a
        # pass costs the same at any fleet size; a sweep of a big region takes
        # serving / reap_batch passes (a small region is swept every pass).
        page = await self.reads.serving_page(region, self.store.settings.reap_batch)
        for iid, (sid, state, epoch) in page.items():
            if state == InstanceState.RESERVED.value:
                s = await self.reads.session(sid)
                if s is None and await self.reads.since(region, iid) >= placed_before:
                    continue
                if s is None or s.state is SessionState.ENDED:
                    await self.settlement.release(region, iid, sid, epoch, to_ready=False)
                continue
            if state != InstanceState.STREAMING.value:
                continue
            s = await self.reads.session(sid)
            if s is None or s.state is SessionState.ENDED or s.epoch != epoch:
                await self.settlement.release(region, iid, sid, epoch, to_ready=False)
            elif s.state is SessionState.ASSIGNED:
                await self.store.connected(sid, epoch)
