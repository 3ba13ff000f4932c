"""What the pool manager needs from the control plane.

The manager depends on `ControlPlanePort` only; `http_port.HttpControlPlane`
implements it over the ops API. The JSON shapes are streamfleet.wire's models
(PoolsView, InstancesView), the same the control plane answers with; the
functions here only turn a validated answer into the manager's own values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from streamfleet.wire import InstancesView, PoolsView

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


def pool_state(body: object, region: str) -> PoolState:
    """The manager's view of one region from a `GET /v1/pools` answer."""
    try:
        entry = PoolsView.model_validate(body).regions[region]
    except ValidationError as exc:
        raise ContractError(f"GET /v1/pools: {exc}") from exc
    except KeyError:
        raise ContractError(f"GET /v1/pools: no region {region}") from None
    return PoolState(
        region=region,
        counts={state.value: n for state, n in entry.instances.items()},
        queue_depth=entry.queue_depth,
        live_sessions=entry.live_sessions,
        constrained=entry.constrained,
        arrivals_per_min=tuple(entry.arrivals_per_min),
    )


def instance_records(body: object) -> list[InstanceRecord]:
    """The manager's view of a `GET /v1/pools/{region}/instances` answer."""
    try:
        rows = InstancesView.model_validate(body).instances
    except ValidationError as exc:
        raise ContractError(f"GET /v1/pools/{{region}}/instances: {exc}") from exc
    return [
        InstanceRecord(
            instance_id=row.instance_id,
            state=row.state.value,
            session_id=row.session_id,
            private_ip=row.private_ip,
            instance_type=row.instance_type,
            state_age_s=row.state_age_s,
            heartbeat_age_s=row.heartbeat_age_s or 0.0,
            draining=row.draining,
        )
        for row in rows
    ]
