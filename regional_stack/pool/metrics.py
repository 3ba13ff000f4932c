"""The pool manager's Prometheus metrics: one `observe(report)` per reconcile pass.

Served by prometheus-client's own HTTP server thread (the manager is a
synchronous loop around boto3), on loopback by default. Names:
`streamfleet_pool_*`, `_total` for counters, `_instances` for sizes.

Each pass is one decision, counted by `action` (scale_out, scale_in, hold) and
`reason`, a bounded label made from the damping step's reason with the numbers
taken out ("scale out 2->4" -> "scale_out"); the full reason is in the log.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

_NUMBERS = re.compile(r"\s*\d+\s*->\s*\d+\s*")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def decision_labels(reason: str) -> tuple[str, str]:
    """(action, reason) from a pass's reason "policy text; damping text" (pure)."""
    damping = reason.rsplit(";", 1)[-1].strip().lower()
    label = _NON_WORD.sub("_", _NUMBERS.sub(" ", damping)).strip("_") or "unknown"
    if label == "scale_out":
        return "scale_out", label
    if label == "scale_in":
        return "scale_in", label
    return "hold", label


class PoolMetrics:
    def __init__(self, region: str) -> None:
        self.region = region
        r = self.registry = CollectorRegistry()

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["region"], registry=r)

        self.desired = gauge(
            "streamfleet_pool_desired_instances", "The Auto Scaling group's desired size"
        )
        self.target = gauge(
            "streamfleet_pool_target_instances", "The pool policy's target before damping"
        )
        self.in_service = gauge(
            "streamfleet_pool_in_service_instances", "Group instances in service (launched)"
        )
        self.warm = gauge(
            "streamfleet_pool_warm_instances",
            "Instances ready and idle per the control plane (assignable now)",
        )
        self.warm_pool = gauge(
            "streamfleet_pool_warm_pool_instances", "Stopped instances in the group's warm pool"
        )
        self.constrained = gauge(
            "streamfleet_pool_constrained", "1 while the region cannot grow (capacity errors)"
        )
        self.last_pass = gauge(
            "streamfleet_pool_last_pass_timestamp_seconds", "When the last pass finished (Unix)"
        )
        self.capacity_errors = Counter(
            "streamfleet_pool_capacity_errors",
            "Scale-outs refused for capacity (each instance type / subnet tried)",
            ["region"],
            registry=r,
        )
        self.decisions = Counter(
            "streamfleet_pool_decisions",
            "Reconcile decisions, by action and reason",
            ["region", "action", "reason"],
            registry=r,
        )
        self.passes = Counter(
            "streamfleet_pool_passes",
            "Reconcile passes, by outcome (ok, control_plane_unavailable, cloud_unavailable, error)",
            ["region", "outcome"],
            registry=r,
        )
        self.instance_actions = Counter(
            "streamfleet_pool_instance_actions",
            "Per-instance actions (drained, terminated, replaced, protected, unprotected)",
            ["region", "action"],
            registry=r,
        )
        # Every label set exists from the start, so rate() and alerts see zeros.
        self.capacity_errors.labels(region)
        for outcome in ("ok", "control_plane_unavailable", "error"):
            self.passes.labels(region, outcome)

    def observe(self, report: Any, *, now: float | None = None) -> None:
        """Record one pass's `PassReport` (duck-typed so this module needs no manager import)."""
        region = self.region
        self.desired.labels(region).set(report.desired)
        self.target.labels(region).set(report.target)
        self.in_service.labels(region).set(getattr(report, "in_service", 0))
        self.warm.labels(region).set(getattr(report, "ready", 0))
        self.warm_pool.labels(region).set(getattr(report, "warm_pool", 0))
        self.constrained.labels(region).set(1 if report.constrained else 0)
        if report.capacity_errors:
            self.capacity_errors.labels(region).inc(report.capacity_errors)
        action, reason = decision_labels(report.reason)
        self.decisions.labels(region, action, reason).inc()
        for name in ("drained", "terminated", "replaced", "protected", "unprotected"):
            count = len(getattr(report, name, ()))
            if count:
                self.instance_actions.labels(region, name).inc(count)
        self.passes.labels(region, "ok").inc()
        self.last_pass.labels(region).set(time.time() if now is None else now)

    def failed(self, outcome: str) -> None:
        self.passes.labels(self.region, outcome).inc()

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics from a daemon thread (prometheus-client's own server)."""
        start_http_server(port, addr=host, registry=self.registry)
