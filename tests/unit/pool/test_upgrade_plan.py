"""The rolling upgrade's plan: never a serving instance, never below the warm size."""

from __future__ import annotations

from regional_stack.pool.upgrade_plan import Member, UpgradeStep, plan_step

OLD, NEW = "ami-old", "ami-new"


def m(iid: str, image: str, state: str | None, session: str | None = None,
      draining: bool = False, lifecycle: str = "InService") -> Member:  # fmt: skip
    return Member(iid, image, lifecycle, state, session, draining)


def step(members: list[Member], desired: int, keep_ready: int, batch: int = 1) -> UpgradeStep:
    return plan_step(
        members, target_image=NEW, desired=desired, max_size=10, keep_ready=keep_ready, batch=batch
    )


def test_done_when_every_live_instance_runs_the_target_image() -> None:
    got = step([m("a", NEW, "ready"), m("gone", OLD, None, lifecycle="Terminating")], 1, 1)
    assert got.done and got.old_left == 0


def test_idle_old_instances_wait_for_new_capacity_first() -> None:
    members = [m("a", OLD, "ready"), m("b", OLD, "ready")]
    got = step(members, desired=2, keep_ready=2)
    assert got.drain == () and got.surge_to == 3  # grow first
    # The surged instance is starting: no second surge while it boots.
    booting = [*members, m("n1", NEW, None, lifecycle="Pending")]
    assert step(booting, desired=3, keep_ready=2).surge_to is None
    # Once it is ready, one old instance may go.
    ready = [*members, m("n1", NEW, "ready")]
    got = step(ready, desired=3, keep_ready=2)
    assert got.drain == ("a",) and got.surge_to is None


def test_serving_instances_are_only_flagged_never_terminated() -> None:
    members = [
        m("s", OLD, "streaming", session="sess-1"),
        m("r", OLD, "reserved", session="sess-2"),
        m("flagged", OLD, "streaming", session="sess-3", draining=True),
        m("n", NEW, "ready"),
    ]
    got = step(members, desired=4, keep_ready=1)
    assert set(got.drain) == {"s", "r"} and got.terminate == ()
    assert got.surge_to is None  # serving ones are no ready capacity to protect


def test_drained_old_instances_without_a_session_are_terminated() -> None:
    members = [m("d", OLD, "draining", draining=True), m("n", NEW, "ready")]
    got = step(members, desired=2, keep_ready=1)
    assert got.terminate == ("d",) and got.drain == ()


def test_batch_bounds_idle_drains_and_keep_ready_bounds_the_batch() -> None:
    members = [m(f"o{i}", OLD, "ready") for i in range(4)] + [m("n", NEW, "ready")]
    assert step(members, desired=5, keep_ready=1, batch=2).drain == ("o0", "o1")
    got = step(members, desired=5, keep_ready=4, batch=2)
    assert got.drain == ("o0",) and got.surge_to == 6  # one may go, one more needs a surge


def test_at_max_size_the_upgrade_still_moves_a_batch_at_a_time() -> None:
    members = [m(f"o{i}", OLD, "ready") for i in range(10)]
    got = step(members, desired=10, keep_ready=10)
    assert got.surge_to is None and got.drain == ("o0",)  # never past max_size, never stuck
    booting = [*members[1:], m("n", NEW, None, lifecycle="Pending")]
    assert step(booting, desired=10, keep_ready=10).drain == ()  # its replacement boots first


def test_old_instances_not_ready_yet_are_drained_at_once() -> None:
    members = [m("boot", OLD, "booting"), m("rec", OLD, "recycling"), m("n", NEW, "ready")]
    got = step(members, desired=3, keep_ready=1)
    # recycling is in use (its session just ended) so it is flagged like a serving one.
    assert set(got.drain) == {"boot", "rec"}
