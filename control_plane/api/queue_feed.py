"""Queue positions for every waiting client's event stream of this process,
fed from the queues' changes instead of read per client.

Before, each waiting client's stream read its session, its rank in every queue,
each region's counters and served window every `sse_poll_s`: about seven Redis
calls per client per half second, so 10,000 waiting clients cost 140,000 calls
a second. Here one task per process reads each region its waiting clients wait
in once per tick (region_feed: one call, whatever the number of clients); the
queue itself travels only when its version moved (every script that changes a
queue bumps it), and each client's position and estimate are computed here from
that one copy. A client's own session is read again only when it left every
queue it waited in (assigned, ended, or Redis forgot it): O(changes).

Why a versioned read each tick rather than Redis pub/sub: a message published
while a replica was cut off, or lost in a failover, is lost for good, and the
waiting page would show a stale position until something else moved; a version
read is self-healing (a store that lost the queue simply answers another
version) and costs one small call per region per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from control_plane.broker import Broker
from control_plane.queue_estimate import ServedWindow, Standing, serving_soon, standing

log = logging.getLogger("control_plane.queue_feed")

# A queue longer than this is read up to here; a client further back is shown
# this far back until it moves up (positions beyond it are not told apart).
MAX_MEMBERS = 100_000


@dataclass
class RegionLine:
    """One region's queue as the feed last read it."""

    version: str = ""
    rank: dict[str, int] = field(default_factory=dict)  # session id -> 0-based
    capacity: int = 0
    window: ServedWindow = field(default_factory=lambda: ServedWindow(0, None, None))


class Watch:
    """One event stream's view of one waiting session: `next()` answers after the
    feed's next read of its regions."""

    def __init__(self, session_id: str, regions: tuple[str, ...]) -> None:
        self.session_id = session_id
        self.regions = regions
        self._latest: Standing | None = None
        self._changed = asyncio.Event()

    def _publish(self, got: Standing | None) -> None:
        self._latest = got
        self._changed.set()

    async def next(self, timeout_s: float) -> Standing | bool | None:
        """The standing after the next read; None when the session is in none of
        its queues any more (read the session again); False on timeout."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return self._latest


class QueueFeed:
    def __init__(
        self, broker: Broker, *, poll_s: float, window_s: float, fallback_session_s: float
    ) -> None:
        self.broker = broker
        self.poll_s = poll_s
        self.window_ms = int(window_s * 1000)
        self.fallback_session_s = fallback_session_s
        self.lines: dict[str, RegionLine] = {}
        self._watches: set[Watch] = set()
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, session_id: str, regions: tuple[str, ...]) -> Iterator[Watch]:
        w = Watch(session_id, regions)
        self._watches.add(w)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="streamfleet-queue-feed")
        try:
            yield w
        finally:
            self._watches.discard(w)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failing = False
        while self._watches:
            try:
                await self.tick()
                failing = False
            except Exception as exc:  # Redis away: the streams wait, the next tick retries
                if not failing:
                    log.warning("queue feed read failed: %s", exc)
                failing = True
            await asyncio.sleep(self.poll_s)
        self.lines.clear()  # nobody waits here: the next watcher reads afresh

    async def tick(self) -> None:
        """Read every region a watched session waits in (one call each), then tell
        every watch its standing."""
        watches = list(self._watches)
        for region in sorted({r for w in watches for r in w.regions}):
            if region not in self.broker.regions:
                continue
            line = self.lines.setdefault(region, RegionLine())
            got = await self.broker.reads.queue_feed(
                region, line.version, self.window_ms, MAX_MEMBERS
            )
            if got.members is not None:
                line.rank = {sid: i for i, sid in enumerate(got.members)}
                line.version = got.version
            line.capacity = serving_soon(got.counts)
            line.window = got.window
        for w in watches:
            w._publish(self.standing_of(w))

    def standing_of(self, w: Watch) -> Standing | None:
        lines = [self.lines[r] for r in w.regions if r in self.lines]
        ranks = [line.rank.get(w.session_id) for line in lines]
        if all(r is None for r in ranks):
            return None
        return standing(
            ranks, sum(line.capacity for line in lines), [line.window for line in lines],
            self.fallback_session_s,
        )  # fmt: skip
