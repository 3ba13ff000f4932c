"""Queued sessions are counted once across the regions they wait in."""

from __future__ import annotations

import pytest

from control_plane.queue_counts import QueuedCounts, count_once


@pytest.mark.parametrize(
    ("queues", "total", "by_region"),
    [
        ({}, 0, {}),
        ({"eu": [], "us": []}, 0, {"eu": 0, "us": 0}),
        # The issue: 4 visitors queued in both EU regions are 4, not 8.
        (
            {"eu-central-1": ["a", "b", "c", "d"], "eu-west-1": ["a", "b", "c", "d"]},
            4,
            {"eu-central-1": 4, "eu-west-1": 0},
        ),
        # Each under the region where it is nearest the head.
        ({"eu": ["x", "a", "b"], "euw": ["a", "b"]}, 3, {"eu": 1, "euw": 2}),
        ({"eu": ["a"], "us": ["b"], "euw": ["c", "a"]}, 3, {"eu": 1, "us": 1, "euw": 1}),
    ],
)
def test_count_once(queues: dict[str, list[str]], total: int, by_region: dict[str, int]) -> None:
    assert count_once(queues) == QueuedCounts(total, by_region)
    assert sum(by_region.values()) == total
