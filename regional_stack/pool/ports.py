"""What the pool manager needs from the control plane, and the contract's JSON shapes.

The manager depends on `ControlPlanePort` only; `http_port.HttpControlPlane`
implements it over the ops API (docs/contracts.md). The parsers here are pure so
the shapes are checked in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# Instance states that hold a user: never terminated, protected from scale-in.
PROTECTED_STATES = frozenset({"reserved", "streaming"})
IN_USE_STATES = frozenset({"reserved", "streaming", "recycling"})
STARTING_STATES = frozenset({"provisioning", "booting"})


class ContractError(ValueError):
    """The control plane answered with a shape the contract does not allow."""


@dataclass(frozen=True)
class PoolState:
    region: str
    counts: dict[str, int]  # instance state -> count
    queue_depth: int
    live_sessions: int
    constrained: bool
    arrivals_per_min: tuple[int, ...]

    def count(self, *states: str) -> int:
        return sum(self.counts.get(s, 0) for s in states)


@dataclass(frozen=True)
class InstanceRecord:
    instance_id: str  # the EC2 instance id: the agent registers with it
    state: str
    session_id: str | None
    private_ip: str | None = None
    instance_type: str | None = None
    state_age_s: float = 0.0
    heartbeat_age_s: float = 0.0
    draining: bool = False

    @property
    def protected(self) -> bool:
        return self.state in PROTECTED_STATES or self.session_id is not None


class ControlPlanePort(Protocol):
    def pool_state(self, region: str) -> PoolState: ...

    def instances(self, region: str) -> list[InstanceRecord]: ...

    def report_constraint(self, region: str, constrained: bool, reason: str) -> None: ...

    def drain(self, region: str, instance_id: str) -> None: ...


def parse_pools(body: Any, region: str) -> PoolState:
    try:
        entry = body["regions"][region]
        counts = {str(k): int(v) for k, v in entry["instances"].items()}
        return PoolState(
            region=region,
            counts=counts,
            queue_depth=int(entry["queue_depth"]),
            live_sessions=int(entry["live_sessions"]),
            constrained=bool(entry["constrained"]),
            arrivals_per_min=tuple(int(n) for n in entry["arrivals_per_min"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContractError(f"GET /v1/pools: bad shape for region {region}: {exc!r}") from exc


def parse_instances(body: Any) -> list[InstanceRecord]:
    try:
        return [
            InstanceRecord(
                instance_id=str(item["instance_id"]),
                state=str(item["state"]),
                session_id=None if item.get("session_id") is None else str(item["session_id"]),
                private_ip=item.get("private_ip"),
                instance_type=item.get("instance_type"),
                state_age_s=float(item.get("state_age_s") or 0.0),
                heartbeat_age_s=float(item.get("heartbeat_age_s") or 0.0),
                draining=bool(item.get("draining", False)),
            )
            for item in body["instances"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError(f"GET /v1/pools/{{region}}/instances: bad shape: {exc!r}") from exc
