"""Count each queued session once, though it may wait in several regions.

A session waits in every region it accepts (one sorted set per region, the
same arrival ticket in each), so summing the regions' queue depths counts it
once per region. Ops want people: each session is counted under the region
where it is nearest the head (its likeliest place to be served), ties to the
region listed first. Pure: the caller reads the queues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class QueuedCounts:
    total: int  # distinct queued sessions
    by_region: dict[str, int]  # each counted once; sums to `total`


def count_once(queues: Mapping[str, Sequence[str]]) -> QueuedCounts:
    """`queues`: region -> session ids in queue order (head first), regions in display order."""
    best: dict[str, tuple[int, int, str]] = {}
    for order, (region, members) in enumerate(queues.items()):
        for rank, session_id in enumerate(members):
            seen = best.get(session_id)
            if seen is None or (rank, order) < seen[:2]:
                best[session_id] = (rank, order, region)
    by_region = dict.fromkeys(queues, 0)
    for _, _, region in best.values():
        by_region[region] += 1
    return QueuedCounts(len(best), by_region)
