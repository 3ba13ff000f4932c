"""Prometheus metrics, one registry per app (several apps may share a process in tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from control_plane.api.context import SERVICES
from control_plane.domain import Placement, RegionSnapshot
from streamfleet.lifecycle import EndReason

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
_WAIT_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600)
_PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.assignment_seconds = Histogram(
            "streamfleet_assignment_seconds",
            "Time to place a session (create call)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.outcomes = Counter(
            "streamfleet_assignment_outcomes", "Create outcomes", ["outcome"], registry=r
        )
        self.queue_depth = Gauge(
            "streamfleet_queue_depth", "Sessions waiting", ["region"], registry=r
        )
        self.queue_wait = Histogram(
            "streamfleet_queue_wait_seconds",
            "Wait of sessions served from the queue",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.instances = Gauge(
            "streamfleet_instances", "Instances by state", ["region", "state"], registry=r
        )
        self.sessions = Gauge(
            "streamfleet_sessions", "Live sessions by state", ["region", "state"], registry=r
        )
        self.ended = Counter(
            "streamfleet_sessions_ended", "Sessions ended, by reason", ["reason"], registry=r
        )
        self.replaced = Counter(
            "streamfleet_sessions_replaced",
            "Sessions put back at the head of the queue because their instance was lost, "
            "restarted or its renderer crashed",
            registry=r,
        )
        self.constrained = Gauge(
            "streamfleet_region_constrained", "1 when a region cannot grow", ["region"], registry=r
        )
        self.redis_up = Gauge(
            "streamfleet_control_plane_redis_up",
            "1 when the last background pass reached Redis, 0 when it could not",
            registry=r,
        )
        # Work per pass should not grow with the fleet (issue 15); the last pass's
        # own time lets a scraper (bench/fleet.py) see every pass, not buckets only.
        self.background_pass = Histogram(
            "streamfleet_control_plane_background_pass_seconds",
            "Time of one background pass (reap, relax, snapshot) over every region",
            buckets=_PASS_BUCKETS,
            registry=r,
        )
        self.background_last_pass = Gauge(
            "streamfleet_control_plane_background_last_pass_seconds",
            "Time of the latest background pass",
            registry=r,
        )
        self.http_requests = Counter(
            "streamfleet_control_plane_http_requests",
            "HTTP requests answered, by route and status code",
            ["route", "status"],
            registry=r,
        )
        # Known label values exist from the start (at 0), so dashboards and alerts see them.
        for outcome in ("assigned", "queued", "existing"):
            self.outcomes.labels(outcome)
        for reason in EndReason:
            self.ended.labels(reason.value)

    def count_request(self, request: web.Request, status: int) -> None:
        # The route template (bounded), never the raw path (session ids).
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        self.http_requests.labels(route, str(status)).inc()

    def observe_assignment(self, placed: Placement, seconds: float) -> None:
        self.assignment_seconds.observe(seconds)
        outcome = (
            "existing"
            if placed.existing
            else "assigned"
            if placed.assigned
            else placed.session.state.value
        )
        self.outcomes.labels(outcome).inc()

    # BrokerObserver
    def session_ended(self, reason: EndReason) -> None:
        self.ended.labels(reason.value).inc()

    def queue_served(self, wait_s: float) -> None:
        self.queue_wait.observe(wait_s)

    def session_replaced(self) -> None:
        self.replaced.inc()

    def update(self, snapshots: Mapping[str, RegionSnapshot]) -> None:
        for region, snap in snapshots.items():
            self.queue_depth.labels(region).set(snap.queue_depth)
            self.constrained.labels(region).set(1 if snap.constrained else 0)
            for state, count in snap.instances.items():
                self.instances.labels(region, state).set(count)
            self.sessions.labels(region, "queued").set(snap.queue_depth)
            self.sessions.labels(region, "assigned").set(snap.instances.get("reserved", 0))
            self.sessions.labels(region, "connected").set(snap.instances.get("streaming", 0))

    def observe_background_pass(self, seconds: float) -> None:
        self.background_pass.observe(seconds)
        self.background_last_pass.set(seconds)

    def render(self) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Outermost: counts every answer, problems included, by route and status."""
    metrics: Metrics = request.app[SERVICES].metrics
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        metrics.count_request(request, exc.status)
        raise
    except Exception:
        metrics.count_request(request, 500)
        raise
    metrics.count_request(request, response.status)
    return response
