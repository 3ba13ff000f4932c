"""Queue wait estimates from the observed service rate (control_plane/queue_estimate.py)."""

from __future__ import annotations

import pytest

from control_plane.queue_estimate import (
    ServedWindow,
    estimate_wait_s,
    service_rate_per_s,
    serving_soon,
    standing,
    window_from_scores,
)


@pytest.mark.parametrize(
    ("count", "oldest_age_s", "newest_age_s", "rate"),
    [
        (0, None, None, None),  # nothing served: no rate
        (1, 30.0, 30.0, None),  # one serve is no rate
        (2, 4.0, 0.0, 0.25),  # one gap of 4 s
        (2, 6.0, 2.0, 0.25),  # ...read 2 s later: still 4 s per head, not 6
        (5, 8.0, 0.0, 0.5),  # a head every 2 s
        (5, 9.5, 1.5, 0.5),  # ...read within the next gap: the same
        (11, 300.0, 0.0, 10 / 300),  # a full window
        (2, 0.01, 0.0, 1.0),  # served in one dispatch: spread over MIN_SPAN_S, not infinite
        (3, 60.0, 50.0, 2 / 55),  # stopped moving: 45 s past a 5 s gap count as running
    ],
)
def test_service_rate(
    count: int, oldest_age_s: float | None, newest_age_s: float | None, rate: float | None
) -> None:
    got = service_rate_per_s(ServedWindow(count, oldest_age_s, newest_age_s))
    assert got == pytest.approx(rate) if rate is not None else got is None


@pytest.mark.parametrize(
    ("position", "rate", "capacity", "fallback_s", "wait"),
    [
        (0, 0.5, 4, 300.0, 0),  # not queued (or already at the head of nothing)
        (1, 0.5, 4, 300.0, 2),
        (10, 0.5, 4, 300.0, 20),  # the case: 20 s, not "about 8 min"
        (3, 1 / 60, 1, 300.0, 180),
        (4, None, 2, 300.0, 600),  # no rate yet: capacity fallback
        (4, None, 0, 300.0, 1200),  # no capacity: as if one instance
        (4, 0.0, 2, 30.0, 60),  # a zero rate is no rate
    ],
)
def test_estimate(
    position: int, rate: float | None, capacity: int, fallback_s: float, wait: int
) -> None:
    assert estimate_wait_s(position, rate, capacity, fallback_s) == wait


def test_windows_of_several_regions_add_up() -> None:
    merged = ServedWindow.merge(
        [ServedWindow(3, 10.0, 2.0), ServedWindow(0, None, None), ServedWindow(2, 25.0, 20.0)]
    )
    assert merged == ServedWindow(5, 25.0, 2.0)
    assert ServedWindow.merge([]) == ServedWindow(0, None, None)


def test_standing_is_the_best_rank_over_the_queues_waited_in() -> None:
    windows = [ServedWindow(0, None, None), ServedWindow(0, None, None)]
    assert standing([7, 2], 2, windows, 30.0) == (3, 45)  # 3 * 30 s / 2 instances
    assert standing([None, 4], 1, windows, 30.0) == (5, 150)
    assert standing([None, None], 1, windows, 30.0) == (0, 0)  # in no queue (yet)


def test_window_from_scores_ages_them_at_the_read() -> None:
    assert window_from_scores(3, 10_000, 18_000, 20_000) == ServedWindow(3, 10.0, 2.0)
    assert window_from_scores(0, None, None, 20_000) == ServedWindow(0, None, None)
    assert window_from_scores(2, 25_000, 26_000, 20_000) == ServedWindow(2, 0.0, 0.0)  # skew


def test_serving_soon_counts_what_a_queue_drains_into() -> None:
    counts = {"ready": 1, "streaming": 3, "lost": 5, "draining": 2, "booting": 1}
    assert serving_soon(counts) == 5
