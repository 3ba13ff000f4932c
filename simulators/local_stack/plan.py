"""What `streamfleet up` will start, where: ports, addresses, secrets. Pure."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from streamfleet.tokens import b64url_encode

# The regions of docs/design.md, with the second octet of each one's loopback /16.
KNOWN_REGIONS: dict[str, tuple[str, float, float, int]] = {
    "eu-central-1": ("eu", 50.11, 8.68, 11),
    "eu-west-1": ("eu", 53.35, -6.26, 12),
    "us-east-1": ("us", 38.90, -77.04, 13),
    "us-west-2": ("us", 45.84, -119.70, 14),
}
# Offsets from --base-port: every port a stack uses follows it, so two stacks (or a
# stack and the test suite) coexist on one host. Instance addresses are shared
# loopback /16s, so the agent and streamer ports must differ per stack instead.
AGENT_PORT_OFFSET = 30
STREAMER_PORT_OFFSET = 31
# Metrics (Prometheus) ports: agents share one port on their own addresses; the
# per-region parts add the region's index; Prometheus itself has one port.
AGENT_METRICS_PORT_OFFSET = 32
POOL_METRICS_PORTS_OFFSET = 40
ROUTER_METRICS_PORTS_OFFSET = 50
TURN_METRICS_PORTS_OFFSET = 60
PROMETHEUS_PORT_OFFSET = 70
IMDS_PORT_OFFSET = 22  # the simulated instance metadata service (identity documents)
# --redis sentinel: the replica, then three sentinels (the primary is on +21).
REDIS_REPLICA_PORT_OFFSET = 23
SENTINEL_PORTS_OFFSET = 24
SENTINELS = 3
REDIS_MODES = ("single", "sentinel")
RELAY_PORTS_OFFSET = 100
RELAY_PORTS_PER_REGION = 200
PORT_SPAN = RELAY_PORTS_OFFSET + 4 * RELAY_PORTS_PER_REGION


@dataclass(frozen=True)
class RegionPlan:
    name: str
    geography: str
    lat: float
    lon: float
    octet: int
    pool_size: int
    router_port: int
    turn_port: int
    relay_ports: tuple[int, int]
    pool_metrics_port: int = 0
    router_metrics_port: int = 0
    turn_metrics_port: int = 0

    @property
    def cidr(self) -> str:
        return f"127.{self.octet}.0.0/16"

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"


@dataclass(frozen=True)
class StackPlan:
    workdir: Path
    regions: tuple[RegionPlan, ...]
    control_plane_port: int
    moto_port: int
    redis_port: int
    redis_url: str | None  # an existing Redis, else one is started on redis_port
    agent_port: int
    streamer_port: int
    demo_visit_from: bool
    policy: str
    agent_metrics_port: int = 0
    prometheus_port: int = 0
    prometheus: bool = False  # start Prometheus (and coturn exporters) scraping every part
    # single: one Redis; sentinel: primary on redis_port, a replica and three sentinels.
    redis_mode: str = "single"
    token_key: str = field(default_factory=lambda: b64url_encode(secrets.token_bytes(32)))
    turn_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # The local Redis requires it (written to an owner-only config file).
    redis_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    agent_token_key: str = field(default_factory=lambda: b64url_encode(secrets.token_bytes(32)))
    imds_port: int = 0
    agent_secrets: dict[str, str] = field(default_factory=dict)

    @property
    def control_plane_url(self) -> str:
        return f"http://127.0.0.1:{self.control_plane_port}"

    @property
    def all_ports(self) -> list[int]:
        ports = [self.control_plane_port, self.moto_port, self.agent_port, self.streamer_port]
        if self.imds_port:
            ports.append(self.imds_port)
        if self.redis_url is None:
            ports.append(self.redis_port)
            if self.redis_mode == "sentinel":
                ports += [self.redis_replica_port, *self.sentinel_ports]
        for r in self.regions:
            ports += [r.router_port, r.turn_port, r.pool_metrics_port, r.router_metrics_port]
            if self.prometheus:
                ports.append(r.turn_metrics_port)
        if self.prometheus:
            ports.append(self.prometheus_port)
        return ports

    @property
    def redis_replica_port(self) -> int:
        return self.redis_port - 21 + REDIS_REPLICA_PORT_OFFSET

    @property
    def sentinel_ports(self) -> tuple[int, ...]:
        first = self.redis_port - 21 + SENTINEL_PORTS_OFFSET
        return tuple(range(first, first + SENTINELS))

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"


def first_instance_ip(region: str) -> str:
    """The private IP moto gives a fresh stack's first instance of `region`: its first
    subnet's first address after the four AWS reserves (simulators/local_aws.py)."""
    return f"127.{KNOWN_REGIONS[region][3]}.1.4"


def make_plan(
    *,
    workdir: Path,
    regions: list[str],
    pool_sizes: dict[str, int],
    base_port: int,
    redis_url: str | None,
    demo_visit_from: bool,
    policy: str = "static",
    prometheus: bool = False,
    redis_mode: str = "single",
) -> StackPlan:
    unknown = [r for r in regions if r not in KNOWN_REGIONS]
    if unknown:
        raise ValueError(
            f"unknown region(s) {', '.join(unknown)}; choose from {', '.join(KNOWN_REGIONS)}"
        )
    if not regions:
        raise ValueError("at least one region")
    if redis_mode not in REDIS_MODES:
        raise ValueError(f"--redis {redis_mode}: one of {', '.join(REDIS_MODES)}")
    if redis_mode != "single" and redis_url is not None:
        raise ValueError(f"--redis {redis_mode} starts its own Redis: leave out --redis-url")
    if not 1024 <= base_port <= 65535 - PORT_SPAN:
        raise ValueError(
            f"--base-port {base_port}: 1024-{65535 - PORT_SPAN} (a stack uses {PORT_SPAN} ports from it)"
        )
    plans = []
    for i, name in enumerate(regions):
        geo, lat, lon, octet = KNOWN_REGIONS[name]
        plans.append(
            RegionPlan(
                name=name, geography=geo, lat=lat, lon=lon, octet=octet,
                pool_size=pool_sizes.get(name, pool_sizes.get("*", 1)),
                router_port=base_port + 1 + i, turn_port=base_port + 11 + i,
                relay_ports=(
                    base_port + RELAY_PORTS_OFFSET + i * RELAY_PORTS_PER_REGION,
                    base_port + RELAY_PORTS_OFFSET + (i + 1) * RELAY_PORTS_PER_REGION - 1,
                ),
                pool_metrics_port=base_port + POOL_METRICS_PORTS_OFFSET + i,
                router_metrics_port=base_port + ROUTER_METRICS_PORTS_OFFSET + i,
                turn_metrics_port=base_port + TURN_METRICS_PORTS_OFFSET + i,
            )
        )  # fmt: skip
    plan = StackPlan(
        workdir=workdir,
        regions=tuple(plans),
        control_plane_port=base_port,
        moto_port=base_port + 20,
        imds_port=base_port + IMDS_PORT_OFFSET,
        redis_port=base_port + 21,
        redis_url=redis_url,
        redis_mode=redis_mode,
        agent_port=base_port + AGENT_PORT_OFFSET,
        streamer_port=base_port + STREAMER_PORT_OFFSET,
        demo_visit_from=demo_visit_from,
        policy=policy,
        agent_metrics_port=base_port + AGENT_METRICS_PORT_OFFSET,
        prometheus_port=base_port + PROMETHEUS_PORT_OFFSET,
        prometheus=prometheus,
    )
    plan.agent_secrets.update({r: secrets.token_urlsafe(24) for r in regions})
    return plan


def parse_pool_sizes(specs: list[str]) -> dict[str, int]:
    """`3` (every region) or `eu-central-1=0` items -> {"*": 3, "eu-central-1": 0}."""
    sizes: dict[str, int] = {}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        key = name if sep else "*"
        if not value.isdigit() or int(value) > 50:
            raise ValueError(f"pool size {spec!r}: a number 0-50, optionally region=N")
        sizes[key] = int(value)
    return sizes
