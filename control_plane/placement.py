"""Region ranking for a client: pure, no I/O.

Nearest by great-circle distance, own geography first, client-measured
latencies over distance when plausible, constrained regions last, and a
policy that may let a waiting client out of its geography.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    geography: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Ranking:
    """`first_try` now; `queue_in` if all are full; `later` once the policy relaxes."""

    first_try: tuple[str, ...]
    queue_in: tuple[str, ...]
    later: tuple[str, ...]
    geography: str


def great_circle_km(a: Location, b: Location) -> float:
    """Haversine distance."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def plausible_latencies(
    latencies_ms: Mapping[str, float] | None, known: Sequence[str], max_ms: float
) -> dict[str, float]:
    if not latencies_ms:
        return {}
    return {r: float(v) for r, v in latencies_ms.items() if r in known and 0 < v <= max_ms}


def rank_regions(
    sites: Sequence[Site],
    location: Location | None,
    *,
    default_order: Sequence[str] = (),
    latencies_ms: Mapping[str, float] | None = None,
    constrained: frozenset[str] = frozenset(),
    cross_geography: Literal["never", "after_wait", "always"] = "after_wait",
    max_plausible_latency_ms: float = 2000.0,
) -> Ranking:
    names = [s.name for s in sites]
    by_name = {s.name: s for s in sites}
    if location is not None:
        order = sorted(
            names, key=lambda n: great_circle_km(location, Location(by_name[n].lat, by_name[n].lon))
        )
    else:
        order = list(default_order) + [n for n in names if n not in default_order]
    measured = plausible_latencies(latencies_ms, names, max_plausible_latency_ms)
    if measured:
        # What the client measured beats what geography guesses.
        order = sorted(measured, key=lambda n: measured[n]) + [
            n for n in order if n not in measured
        ]
    geography = by_name[order[0]].geography
    # Constrained regions keep their relative order but go last (stable sort).
    order = sorted(order, key=lambda n: n in constrained)
    own = tuple(n for n in order if by_name[n].geography == geography)
    everywhere = tuple(order)
    if cross_geography == "always":
        return Ranking(everywhere, everywhere, everywhere, geography)
    if cross_geography == "never":
        return Ranking(own, own, own, geography)
    return Ranking(own, own, everywhere, geography)
