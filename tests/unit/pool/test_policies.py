"""Pool sizing policies, table-driven (as Agones' applyBufferPolicy tests)."""

from __future__ import annotations

import pytest

from regional_stack.pool.policies import (
    Bounds,
    BufferPolicy,
    DemandSnapshot,
    MaxPolicy,
    Policy,
    PredictivePolicy,
    SchedulePolicy,
    StaticPolicy,
    Window,
)


def snap(
    in_use: int = 0,
    queue: int = 0,
    arrivals: tuple[int, ...] = (),
    now: float = 600.0,
    lead: float = 60.0,
) -> DemandSnapshot:
    return DemandSnapshot(
        now=now, in_use=in_use, queue=queue, arrivals_per_min=arrivals, lead_time_s=lead
    )


LAUNCH = Window(start=3600.0, end=7200.0, min_hot=50)
CASES: list[tuple[str, Policy, DemandSnapshot, int, bool]] = [
    ("static", StaticPolicy(10), snap(in_use=3), 10, False),
    ("static above max", StaticPolicy(10, Bounds(0, 8)), snap(), 8, True),
    ("static below min", StaticPolicy(1, Bounds(4, 8)), snap(), 4, True),
    ("buffer absolute", BufferPolicy(buffer_size=5), snap(in_use=10), 15, False),
    ("buffer percent wins", BufferPolicy(2, 50.0), snap(in_use=10), 15, False),
    ("buffer absolute wins", BufferPolicy(8, 10.0), snap(in_use=10), 18, False),
    ("buffer counts queue", BufferPolicy(2), snap(in_use=10, queue=4), 16, False),
    ("buffer zero demand", BufferPolicy(3, 10.0), snap(), 3, False),
    ("buffer zero demand min", BufferPolicy(0, 10.0, Bounds(2, 9)), snap(), 2, True),
    ("buffer capped", BufferPolicy(5, bounds=Bounds(0, 12)), snap(in_use=10), 12, True),
    ("buffer percent rounds up", BufferPolicy(0, 10.0), snap(in_use=11), 13, False),
    ("schedule before window", SchedulePolicy((LAUNCH,)), snap(in_use=2, now=3000.0), 2, False),
    # Opens one lead time early so the pool is hot when the window starts.
    ("schedule pre-warm", SchedulePolicy((LAUNCH,)), snap(in_use=2, now=3550.0), 50, False),
    ("schedule in window", SchedulePolicy((LAUNCH,)), snap(in_use=2, now=5000.0), 50, False),
    (
        "schedule demand above floor",
        SchedulePolicy((LAUNCH,)),
        snap(in_use=70, now=5000.0),
        70,
        False,
    ),
    ("schedule window ended", SchedulePolicy((LAUNCH,)), snap(in_use=2, now=7200.0), 2, False),
    (
        "schedule floor capped",
        SchedulePolicy((LAUNCH,), Bounds(0, 30)),
        snap(now=5000.0),
        30,
        True,
    ),
    ("predictive zero demand", PredictivePolicy(min_buffer=2), snap(), 2, False),
    (
        "predictive zero demand min",
        PredictivePolicy(min_buffer=0, bounds=Bounds(3, 9)),
        snap(),
        3,
        True,
    ),
    # 10/min steady, 60 s lead: 10 arrivals -> 10*1.2 + 2*sqrt(10) = 18.3 -> 19, + 2 buffer.
    ("predictive steady", PredictivePolicy(), snap(in_use=20, arrivals=(10,) * 10), 41, False),
    # Longer lead, proportionally more cover (Little's law).
    (
        "predictive longer lead",
        PredictivePolicy(),
        snap(in_use=20, arrivals=(10,) * 10, lead=300.0),
        20 + 2 + 75,
        False,
    ),
    (
        "predictive capped",
        PredictivePolicy(bounds=Bounds(0, 30)),
        snap(in_use=20, arrivals=(10,) * 10),
        30,
        True,
    ),
    (
        "composed takes max",
        MaxPolicy((StaticPolicy(7), BufferPolicy(3))),
        snap(in_use=10),
        13,
        False,
    ),
    (
        "composed clamps",
        MaxPolicy((StaticPolicy(7), BufferPolicy(3)), Bounds(0, 9)),
        snap(in_use=10),
        9,
        True,
    ),
    (
        "composed schedule floor",
        MaxPolicy((PredictivePolicy(), SchedulePolicy((LAUNCH,)))),
        snap(in_use=1, now=5000.0),
        50,
        False,
    ),
]


@pytest.mark.parametrize(
    ("policy", "snapshot", "target", "limited"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_policy_table(policy: Policy, snapshot: DemandSnapshot, target: int, limited: bool) -> None:
    result = policy(snapshot)
    assert (result.target, result.limited) == (target, limited), result.reason


def test_predictive_reacts_to_a_sudden_spike_before_the_level_catches_up() -> None:
    policy = PredictivePolicy()
    calm = policy(snap(in_use=10, arrivals=(2,) * 12))
    spike = policy(snap(in_use=10, arrivals=(2,) * 9 + (10, 25, 40)))
    # The trend is extrapolated over the lead time: more than the level alone would ask for.
    level_only = PredictivePolicy(trend_minutes=1)(
        snap(in_use=10, arrivals=(2,) * 9 + (10, 25, 40))
    )
    assert calm.target < level_only.target < spike.target


def test_predictive_does_not_extrapolate_a_falling_trend() -> None:
    policy = PredictivePolicy()
    # At :00 the current minute has just begun and is ignored: the level is the last 3 full ones.
    falling = policy(snap(in_use=10, arrivals=(40, 30, 20, 10, 10, 10, 0)))
    assert falling.target == policy(snap(in_use=10, arrivals=(10, 10, 10, 0))).target


def test_predictive_scales_the_partial_current_minute() -> None:
    policy = PredictivePolicy(
        level_minutes=1, trend_minutes=1, margin=0.0, sigmas=0.0, min_buffer=0
    )
    # 30 s into the minute with 5 arrivals -> 10/min; lead 60 s -> 10 instances of cover.
    assert policy(snap(arrivals=(0, 5), now=630.0)).target == 10


def test_bounds_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="minimum"):
        Bounds(5, 2)
    with pytest.raises(ValueError, match="buffer"):
        BufferPolicy(-1)
    with pytest.raises(ValueError, match="at least one"):
        MaxPolicy(())
