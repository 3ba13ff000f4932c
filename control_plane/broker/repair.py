"""The reaper: expire what timed out, finish follow-ups crashed callers left,
repair leaks. Safe to run from several processes at once: every change is a
compare-and-set script."""

from __future__ import annotations

from control_plane.broker.outbox import EndEntry
from control_plane.broker.reads import Reads
from control_plane.broker.settlement import Settlement
from control_plane.broker.store import Store, ms
from control_plane.domain import ReapReport
from streamfleet.lifecycle import InstanceState, SessionState


class Reaper:
    def __init__(self, store: Store, reads: Reads, settlement: Settlement) -> None:
        self.store = store
        self.reads = reads
        self.settlement = settlement

    async def reap(self, region: str) -> ReapReport:
        """Expire claims, reconnect windows, lost instances and queue deadlines,
        finish follow-ups that crashed callers left, repair leaks."""
        report = ReapReport()
        created = await self.store.reap(region)
        for entry in created:
            report.count(entry.reason.value if isinstance(entry, EndEntry) else "bind")
        report.binds += await self.settlement.settle(region, created)
        cutoff = await self.reads.now_ms() - ms(self.store.settings.outbox_grace_s)
        stale = await self.reads.stale_outbox(region, cutoff, self.store.settings.reap_batch)
        report.binds += await self.settlement.settle(region, stale)
        await self._repair_streaming(region)
        await self.settlement.dispatch(region)
        return report

    async def _repair_streaming(self, region: str) -> None:
        """A streaming instance whose session ended (its release crashed) is
        released; a session the instance serves but that still says assigned
        (its connect crashed) is marked connected."""
        serving = await self.reads.region_hash(region, "sess")
        if not serving:
            return
        states = await self.reads.region_hash(region, "state")
        epochs = await self.reads.region_hash(region, "epoch")
        for iid, sid in serving.items():
            if states.get(iid) != InstanceState.STREAMING.value:
                continue
            epoch = int(epochs.get(iid, "0"))
            s = await self.reads.session(sid)
            if s is None or s.state is SessionState.ENDED or s.epoch != epoch:
                await self.settlement.release(region, iid, sid, epoch, to_ready=False)
            elif s.state is SessionState.ASSIGNED:
                await self.store.connected(sid, epoch)
