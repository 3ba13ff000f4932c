"""Every port of a stack follows its base port, so stacks with different bases never share one."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.local_stack.plan import KNOWN_REGIONS, PORT_SPAN, StackPlan, make_plan


def plan(base: int) -> StackPlan:
    return make_plan(
        workdir=Path("/w"), regions=list(KNOWN_REGIONS), pool_sizes={"*": 1},
        base_port=base, redis_url=None, demo_visit_from=False,
    )  # fmt: skip


def ports(p: StackPlan) -> set[int]:
    """Every TCP and UDP port the stack binds: services, agents, and TURN relay ranges."""
    used = set(p.all_ports)
    for r in p.regions:
        used |= set(range(r.relay_ports[0], r.relay_ports[1] + 1))
    return used


def test_every_port_lies_in_the_block_of_the_base_port() -> None:
    used = ports(plan(21000))
    assert min(used) == 21000 and max(used) < 21000 + PORT_SPAN
    assert len(plan(21000).all_ports) == len(set(plan(21000).all_ports))  # no port twice


def test_two_stacks_a_block_apart_share_no_port() -> None:
    assert not ports(plan(21000)) & ports(plan(21000 + PORT_SPAN))
    assert not ports(plan(8080)) & ports(plan(9080))  # the README's two stacks


@pytest.mark.parametrize("base", [80, 65000])
def test_a_base_port_whose_block_does_not_fit_is_refused(base: int) -> None:
    with pytest.raises(ValueError, match="--base-port"):
        plan(base)


def test_sentinel_mode_ports_are_distinct_and_in_the_block() -> None:
    p = make_plan(
        workdir=Path("/w"), regions=list(KNOWN_REGIONS), pool_sizes={"*": 1},
        base_port=21000, redis_url=None, demo_visit_from=False, redis_mode="sentinel",
    )  # fmt: skip
    assert {p.redis_port, p.redis_replica_port, *p.sentinel_ports} <= set(p.all_ports)
    assert len(p.all_ports) == len(set(p.all_ports))
    assert max(p.all_ports) < 21000 + PORT_SPAN


def test_sentinel_mode_starts_its_own_redis() -> None:
    with pytest.raises(ValueError, match="--redis-url"):
        make_plan(
            workdir=Path("/w"), regions=["eu-central-1"], pool_sizes={}, base_port=21000,
            redis_url="redis://127.0.0.1:6379/0", demo_visit_from=False, redis_mode="sentinel",
        )  # fmt: skip
