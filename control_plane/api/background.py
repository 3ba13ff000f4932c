"""Background work of every replica: reaping, queue dispatch and relaxing, snapshots.

Every replica runs it. Reaping a region takes a short lease first so that N
replicas do not all scan the same region each period; correctness never
depends on the lease (each change is a compare-and-set script).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from control_plane.api.context import Services
from control_plane.domain import StoreUnavailable
from streamfleet.lifecycle import SessionState

log = logging.getLogger("streamfleet.control_plane.background")


async def _reap_region(svc: Services, region: str, lease_ms: int) -> None:
    if not await svc.broker.reads.take_lease(region, lease_ms):
        return
    report = await svc.broker.reap(region, svc.settings.reaper_interval_s)
    if report.ended or report.binds:
        # Per-session lines need the broker to name the sessions; this is the tally.
        log.info(
            "reaper pass", extra={"region": region, "ended": report.ended, "binds": report.binds}
        )
    await _relax_waiting(svc, region)


async def _relax_waiting(svc: Services, region: str) -> None:
    """after_wait policy: a session queued longer than the relax time may also
    wait in the regions outside its geography (kept as its `regions`)."""
    if svc.settings.cross_geography != "after_wait":
        return
    now = await svc.broker.now_ms()
    relax_ms = svc.settings.geography_relax_after_s * 1000
    for sid in await svc.broker.reads.queue_head(region, 200):
        with contextlib.suppress(Exception):
            s = await svc.broker.get_session(sid)
            if (
                s.state is SessionState.QUEUED
                and now - s.created_ms >= relax_ms
                and set(s.regions) - set(s.queue_regions)
            ):
                await svc.broker.widen_queue(sid, s.regions)


async def run_background(svc: Services, stop: asyncio.Event) -> None:
    """Until `stop` is set. Shutdown uses the event, not only cancellation:
    a cancellation that lands inside a Redis call can be absorbed there."""
    interval = svc.settings.reaper_interval_s
    lease_ms = max(100, int(interval * 900))
    while not stop.is_set():
        try:
            started = time.perf_counter()
            for region in svc.settings.region_names:
                await _reap_region(svc, region, lease_ms)
            svc.snapshots = {r: await svc.broker.snapshot(r) for r in svc.settings.region_names}
            svc.metrics.update(svc.snapshots)
            svc.metrics.redis_up.set(1)
            svc.metrics.observe_background_pass(time.perf_counter() - started)
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as exc:
            svc.metrics.redis_up.set(0)
            log.warning("background pass: redis unreachable: %s", exc)
        except Exception:
            # Redis away or a bug: log, keep the loop alive, try next period.
            log.exception("background pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
