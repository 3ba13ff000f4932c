"""Damping (cooldowns, hysteresis) and the reconcile plan's safety rules."""

from __future__ import annotations

from regional_stack.pool.asg import AsgInstance, Candidate, GroupView, candidates
from regional_stack.pool.damping import DampingConfig, DampingState, damp
from regional_stack.pool.plan import choose_idle, housekeeping
from regional_stack.pool.ports import InstanceRecord

CFG = DampingConfig(
    scale_in_cooldown_s=300.0, hysteresis=2, hysteresis_percent=0.0, max_scale_in_step=5
)


def test_scale_out_is_immediate_and_starts_the_scale_in_cooldown() -> None:
    d = damp(10, 20, 1000.0, DampingState(), CFG)
    assert d.desired == 20
    assert damp(20, 10, 1100.0, d.state, CFG).desired == 20  # cooldown
    assert damp(20, 10, 1300.0, d.state, CFG).desired == 15  # step-limited scale-in


def test_hysteresis_band_stops_flapping() -> None:
    state = DampingState()
    assert damp(10, 8, 5000.0, state, CFG).desired == 10  # surplus 2 within band
    assert damp(10, 7, 5000.0, state, CFG).desired == 7


def test_a_wobbling_target_does_not_flap_the_group() -> None:
    state, size, changes = DampingState(), 10, 0
    for step, target in enumerate([10, 9, 11, 9, 10, 11, 9] * 20):
        d = damp(size, target, step * 15.0, state, CFG)
        changes += d.desired != size
        size, state = d.desired, d.state
    assert (changes, size) == (1, 11)  # one scale-out to 11, never back down inside the band


def rec(iid: str, state: str, session: str | None = None, age: float = 0.0) -> InstanceRecord:
    return InstanceRecord(instance_id=iid, state=state, session_id=session, state_age_s=age)


def group(*members: tuple[str, bool]) -> GroupView:
    return GroupView(
        name="g",
        desired=len(members),
        min_size=0,
        max_size=10,
        instances=tuple(
            AsgInstance(i, "InService", "Healthy", p, "g4dn.2xlarge", "a") for i, p in members
        ),
        subnets=("s-a", "s-b"),
        launch_template_id="lt",
        launch_template_version="1",
        warm_pool_configured=False,
        warm_instances=0,
    )


def test_housekeeping_protects_serving_and_never_terminates_them() -> None:
    g = group(
        ("i-1", False), ("i-2", True), ("i-3", True), ("i-4", False), ("i-5", True), ("i-6", False)
    )
    records = {
        "i-1": rec("i-1", "streaming", "s1"),
        "i-2": rec("i-2", "ready"),  # protected but idle: cleared
        "i-3": rec("i-3", "lost", "s3"),  # lost but its session not yet ended: keep
        "i-4": rec("i-4", "lost"),
        "i-5": rec("i-5", "lost"),  # still protected this pass: unprotect, terminate later
        "i-6": rec("i-6", "draining"),
    }
    h = housekeeping(g, records)
    assert h.protect == ("i-1",)
    assert h.unprotect == ("i-2", "i-5")
    assert h.replace_lost == ("i-4",)
    assert h.terminate_drained == ("i-6",)


def test_choose_idle_takes_longest_idle_unprotected_ready() -> None:
    g = group(("i-1", False), ("i-2", False), ("i-3", True), ("i-4", False))
    records = {
        "i-1": rec("i-1", "ready", age=10),
        "i-2": rec("i-2", "ready", age=500),
        "i-3": rec("i-3", "ready", age=900),  # still flagged protected in the group
        "i-4": rec("i-4", "reserved", "s4"),
    }
    assert choose_idle(g, records, 5) == ("i-2", "i-1")
    assert choose_idle(g, records, 1) == ("i-2",)


def test_candidates_walk_types_then_subnet_rotations() -> None:
    assert candidates(["g4dn", "g5"], ["a", "b"]) == [
        Candidate("g4dn", ("a", "b")),
        Candidate("g4dn", ("b", "a")),
        Candidate("g5", ("a", "b")),
        Candidate("g5", ("b", "a")),
    ]
