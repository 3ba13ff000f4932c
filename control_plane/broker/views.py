"""Read-only views for ops, metrics and pool managers: region snapshots,
instance rows, arrivals per minute."""

from __future__ import annotations

import json

from control_plane.broker.reads import Reads
from control_plane.broker.store import Store
from control_plane.domain import RegionSnapshot
from streamfleet.lifecycle import InstanceState
from streamfleet.wire import InstanceView

_GONE = (InstanceState.LOST, InstanceState.TERMINATED)


def one_row_per_ip(rows: list[InstanceView]) -> list[InstanceView]:
    """Of rows sharing a private IP keep the one still in service, else the
    newest (smallest state age); order and IP-less rows are kept."""
    best: dict[str, InstanceView] = {}
    for row in rows:
        if row.private_ip is None:
            continue
        held = best.get(row.private_ip)
        if held is None or (row.state not in _GONE, -row.state_age_s) > (
            held.state not in _GONE,
            -held.state_age_s,
        ):
            best[row.private_ip] = row
    return [r for r in rows if r.private_ip is None or best[r.private_ip] is r]


class Views:
    def __init__(self, store: Store, reads: Reads) -> None:
        self.store = store
        self.reads = reads

    async def snapshot(self, region: str) -> RegionSnapshot:
        self.store.rkeys(region)
        counts = {s.value: 0 for s in InstanceState}
        counts.update(await self.reads.state_counts(region))  # counters, not the state hash
        meta = await self.reads.region_hash(region, "meta")
        return RegionSnapshot(
            region=region,
            instances=counts,
            queue_depth=await self.reads.queue_depth(region),
            live_sessions=counts["reserved"] + counts["streaming"],
            constrained=meta.get("constrained") == "1",
            constraint_reason=meta.get("reason", ""),
        )

    async def set_constrained(self, region: str, constrained: bool, reason: str = "") -> None:
        self.store.rkeys(region)
        await self.reads.set_meta(
            region, {"constrained": "1" if constrained else "0", "reason": reason[:200]}
        )

    async def instance_details(self, region: str) -> list[InstanceView]:
        """Every instance of a region with its state, session and ages (ops views),
        one row per private IP: the cloud reuses the IP of an instance that is
        gone, and until the retention forgets the old record the IP's current
        holder is the row that counts."""
        self.store.rkeys(region)
        state, sess, ip, since, drain, info = [
            await self.reads.region_hash(region, name)
            for name in ("state", "sess", "ip", "since", "drain", "info")
        ]
        hb = await self.reads.heartbeats(region)
        now = await self.reads.now_ms()
        rows = []
        for iid, st in sorted(state.items()):
            meta = json.loads(info.get(iid, "{}"))
            rows.append(InstanceView(
                instance_id=iid, state=InstanceState(st), session_id=sess.get(iid),
                private_ip=ip.get(iid), instance_type=meta.get("instance_type", ""),
                state_age_s=round((now - int(float(since.get(iid, now)))) / 1000, 1),
                heartbeat_age_s=round((now - hb[iid]) / 1000, 1) if iid in hb else None,
                draining=drain.get(iid) == "1",
            ))  # fmt: skip
        return one_row_per_ip(rows)

    async def instance_state(self, region: str, iid: str) -> InstanceState | None:
        """One instance's state (one field read: an agent's event answer)."""
        self.store.rkeys(region)
        return await self.reads.instance_state(region, iid)

    async def instance_states(self, region: str) -> dict[str, InstanceState]:
        return {
            k: InstanceState(v) for k, v in (await self.reads.region_hash(region, "state")).items()
        }

    async def instance_sessions(self, region: str) -> dict[str, tuple[str, int]]:
        """instance id -> (session id, epoch) for every serving instance."""
        serving = await self.reads.region_hash(region, "sess")
        epochs = await self.reads.region_hash(region, "epoch")
        return {k: (v, int(epochs.get(k, "0"))) for k, v in serving.items()}

    async def arrivals_per_min(self, region: str, minutes: int = 15) -> list[int]:
        """Creations per minute, oldest first, the current minute last (counted by
        region_place under the region a create ranks first)."""
        now_minute = await self.reads.now_ms() // 60_000
        raw = await self.reads.arrivals(region)
        await self.reads.forget_arrivals(region, [m for m in raw if m < now_minute - 60])
        return [raw.get(m, 0) for m in range(now_minute - minutes + 1, now_minute + 1)]
