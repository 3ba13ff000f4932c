"""Pool manager metrics: one decision per pass, labels bounded."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from regional_stack.pool.manager import PassReport
from regional_stack.pool.metrics import PoolMetrics, decision_labels


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("static 3; scale out 1->3", ("scale_out", "scale_out")),
        ("demand 2 + buffer 1; scale in 9->3", ("scale_in", "scale_in")),
        ("static 1; steady", ("hold", "steady")),
        ("demand 4 + buffer 2; scale-out cooldown", ("hold", "scale_out_cooldown")),
        ("demand 0; raised to minimum 2; scale-in cooldown", ("hold", "scale_in_cooldown")),
        ("static 5; within hysteresis band", ("hold", "within_hysteresis_band")),
        ("", ("hold", "unknown")),
    ],
)
def test_decision_labels_drop_the_numbers(reason: str, expected: tuple[str, str]) -> None:
    assert decision_labels(reason) == expected


def samples(metrics: PoolMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_a_pass_sets_sizes_and_counts_its_decision_and_errors() -> None:
    m = PoolMetrics("us-east-1")
    report = PassReport(
        target=4, desired=3, reason="demand 3 + buffer 1; scale out 2->3", drained=(),
        constrained=True, capacity_errors=2, in_service=2, ready=1, warm_pool=5,
        replaced=("i-1",),
    )  # fmt: skip
    m.observe(report, now=1000.0)
    m.observe(PassReport(target=4, desired=3, reason="x; steady"), now=1002.0)
    m.failed("control_plane_unavailable")
    got = samples(m)
    r = (("region", "us-east-1"),)
    assert got["streamfleet_pool_desired_instances", r] == 3
    assert got["streamfleet_pool_target_instances", r] == 4
    assert got["streamfleet_pool_in_service_instances", r] == 0  # the second pass's
    assert got["streamfleet_pool_constrained", r] == 0
    assert got["streamfleet_pool_capacity_errors_total", r] == 2
    assert got["streamfleet_pool_last_pass_timestamp_seconds", r] == 1002.0
    decision = (("action", "scale_out"), ("reason", "scale_out"), ("region", "us-east-1"))
    assert got["streamfleet_pool_decisions_total", decision] == 1
    steady = (("action", "hold"), ("reason", "steady"), ("region", "us-east-1"))
    assert got["streamfleet_pool_decisions_total", steady] == 1
    replaced = (("action", "replaced"), ("region", "us-east-1"))
    assert got["streamfleet_pool_instance_actions_total", replaced] == 1
    assert got["streamfleet_pool_passes_total", (("outcome", "ok"), *r)] == 2
    failed = (("outcome", "control_plane_unavailable"), *r)
    assert got["streamfleet_pool_passes_total", failed] == 1


def test_first_pass_values_are_kept() -> None:
    m = PoolMetrics("eu-west-1")
    m.observe(
        PassReport(
            target=2, desired=2, reason="static 2; steady", in_service=2, ready=2, warm_pool=1
        )
    )
    got = samples(m)
    r = (("region", "eu-west-1"),)
    assert got["streamfleet_pool_in_service_instances", r] == 2
    assert got["streamfleet_pool_warm_instances", r] == 2
    assert got["streamfleet_pool_warm_pool_instances", r] == 1
    assert got["streamfleet_pool_capacity_errors_total", r] == 0  # exists before any error
