"""Pure parts of the live launch-day replay: queue order judging, fault placement,
the users' draw."""

from __future__ import annotations

from pathlib import Path

from simulators.launch_day.live import LiveConfig, draw_users, fault_plan
from simulators.launch_day.live_report import order_violations
from simulators.launch_day.live_users import User, user_ip
from simulators.launch_day.scenario import Scenario


def queued(n: int, sent: float, answered: float, assigned: float, region: str = "r") -> User:
    u = User(n, region, 0.0, 60.0, 60.0, False)
    u.sent, u.answered, u.queued = sent, answered, True
    u.region, u.assigned_at_server = region, assigned
    return u


def test_a_later_user_served_first_is_one_violation_per_overtaken_user() -> None:
    users = [
        queued(0, sent=0.0, answered=0.1, assigned=10.0),
        queued(1, sent=0.2, answered=0.3, assigned=5.0),  # overtook 0
        queued(2, sent=0.4, answered=0.5, assigned=11.0),
        queued(3, sent=0.0, answered=0.1, assigned=1.0, region="other"),  # other queue
    ]
    assert order_violations(users) == {"other": 0, "r": 1}


def test_users_whose_creates_overlapped_have_no_order_to_keep() -> None:
    users = [
        queued(0, sent=0.0, answered=0.5, assigned=10.0),
        queued(1, sent=0.2, answered=0.6, assigned=5.0),  # sent before 0 was answered
    ]
    assert order_violations(users) == {"r": 0}


def cfg(start_h: float, end_h: float, faults: tuple[str, ...]) -> LiveConfig:
    return LiveConfig(
        scenario=Scenario(peak_parallel=40, mean_session_s=120), speed=6.0, policy="buffer",
        start_s=start_h * 3600, end_s=end_h * 3600, faults=faults, workdir=Path("unused"),
    )  # fmt: skip


def test_faults_keep_their_scenario_times_in_a_whole_day_replay() -> None:
    plan = fault_plan(cfg(0, 24, ("replica_kill9", "capacity_errors")), sentinel=False)
    assert [p.at_s for p in plan] == [10.75 * 3600, 11.25 * 3600]


def test_a_slice_of_the_day_gets_its_faults_inside_it() -> None:
    c = cfg(10.05, 10.2, ("replica_kill9", "capacity_errors"))
    plan = fault_plan(c, sentinel=False)
    assert all(c.start_s < p.at_s and p.at_s + p.hold_s < c.end_s for p in plan)
    assert plan[0].at_s < plan[1].at_s


def test_users_are_the_models_arrivals_in_the_window_from_every_region() -> None:
    c = cfg(10.05, 10.2, ())
    users, static_count = draw_users(c)
    again, _ = draw_users(c)
    assert [(u.arrive_s, u.home) for u in users] == [(u.arrive_s, u.home) for u in again]
    assert all(c.start_s <= u.arrive_s < c.end_s for u in users)
    assert {u.home for u in users} == set(c.regions)
    assert static_count >= 40
    assert user_ip("eu-central-1", 300).startswith("81.10.")
