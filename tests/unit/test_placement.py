"""Region ranking and client-IP rules (pure)."""

from __future__ import annotations

import pytest

from control_plane.geo import client_ip, parse_networks
from control_plane.placement import Location, Site, great_circle_km, rank_regions

SITES = [
    Site("eu-central-1", "eu", 50.11, 8.68),
    Site("eu-west-1", "eu", 53.35, -6.26),
    Site("us-east-1", "us", 38.90, -77.04),
    Site("us-west-2", "us", 45.84, -119.70),
]
FRANKFURT, DUBLIN = Location(50.11, 8.68), Location(53.35, -6.26)
VIRGINIA, SEATTLE = Location(38.9, -77.04), Location(47.61, -122.33)


def test_great_circle_frankfurt_to_dublin() -> None:
    assert 1080 < great_circle_km(FRANKFURT, DUBLIN) < 1100


@pytest.mark.parametrize(
    ("where", "first", "queue", "later"),
    [
        (FRANKFURT, ("eu-central-1", "eu-west-1"), ("eu-central-1", "eu-west-1"), ("eu-central-1", "eu-west-1", "us-east-1", "us-west-2")),
        (DUBLIN, ("eu-west-1", "eu-central-1"), ("eu-west-1", "eu-central-1"), ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2")),
        (VIRGINIA, ("us-east-1", "us-west-2"), ("us-east-1", "us-west-2"), ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")),
        (SEATTLE, ("us-west-2", "us-east-1"), ("us-west-2", "us-east-1"), ("us-west-2", "us-east-1", "eu-west-1", "eu-central-1")),
    ],
)  # fmt: skip
def test_nearest_first_own_geography_then_the_world(
    where: Location, first: tuple[str, ...], queue: tuple[str, ...], later: tuple[str, ...]
) -> None:
    r = rank_regions(SITES, where)
    assert (r.first_try, r.queue_in, r.later) == (first, queue, later)


def test_unknown_location_uses_the_default_order() -> None:
    r = rank_regions(SITES, None, default_order=["us-east-1", "eu-central-1"])
    assert r.first_try == ("us-east-1", "us-west-2") and r.geography == "us"


def test_plausible_latencies_beat_distance_and_wild_ones_are_ignored() -> None:
    r = rank_regions(SITES, FRANKFURT, latencies_ms={"eu-west-1": 12.0, "eu-central-1": 30.0})
    assert r.first_try == ("eu-west-1", "eu-central-1")
    r = rank_regions(
        SITES, FRANKFURT, latencies_ms={"eu-west-1": 0.0, "us-east-1": 99999, "xx-nowhere-1": 1}
    )
    assert r.first_try == ("eu-central-1", "eu-west-1")


def test_constrained_regions_rank_last() -> None:
    r = rank_regions(SITES, FRANKFURT, constrained=frozenset({"eu-central-1"}))
    assert r.first_try == ("eu-west-1", "eu-central-1")


@pytest.mark.parametrize(
    ("policy", "first", "later"),
    [
        ("never", ("eu-central-1", "eu-west-1"), ("eu-central-1", "eu-west-1")),
        ("always", ("eu-central-1", "eu-west-1", "us-east-1", "us-west-2"), ("eu-central-1", "eu-west-1", "us-east-1", "us-west-2")),
    ],
)  # fmt: skip
def test_cross_geography_policies(
    policy: str, first: tuple[str, ...], later: tuple[str, ...]
) -> None:
    r = rank_regions(SITES, FRANKFURT, cross_geography=policy)  # type: ignore[arg-type]
    assert (r.first_try, r.later) == (first, later)


TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1/32"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("81.10.1.2", None, "81.10.1.2"),
        ("81.10.1.2", "3.80.1.2", "81.10.1.2"),  # untrusted peer: its header is ignored
        ("127.0.0.1", "3.80.1.2", "3.80.1.2"),
        ("127.0.0.1", "6.6.6.6, 3.80.1.2, 10.1.2.3", "3.80.1.2"),  # right-most untrusted hop
        ("127.0.0.1", "10.1.1.1, 10.2.2.2", "127.0.0.1"),  # all trusted: the peer
        ("127.0.0.1", "garbage, 3.80.1.2", "3.80.1.2"),
        ("127.0.0.1", "3.80.1.2, garbage", "127.0.0.1"),  # a malformed hop stops the walk
        ("not-an-ip", None, None),
    ],
)
def test_client_ip(peer: str, xff: str | None, expected: str | None) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected
