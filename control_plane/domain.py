"""Broker outcomes and errors: typed results, no I/O.

Contention is a normal result (Queued, an `existing` flag), never an
exception. Exceptions are for calls that are wrong: unknown region or
session, a stale epoch, a bad argument. Each has a stable `code` the HTTP
layer maps to a problem+json `type`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamfleet import ids
from streamfleet.lifecycle import EndReason, InstanceState, SessionState


class BrokerError(Exception):
    code = "broker_error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidArgument(BrokerError):
    code = "invalid_argument"


class UnknownRegion(BrokerError):
    code = "unknown_region"


class UnknownSession(BrokerError):
    code = "unknown_session"


class SessionExpired(BrokerError):
    """A genuine secret for a session Redis forgot, too old to be rebuilt."""

    code = "session_expired"


class UnknownInstance(BrokerError):
    code = "unknown_instance"


class RateLimited(BrokerError):
    """The caller's request budget for this window is spent (counted by the
    create's first script); `reset_ms` until the window resets."""

    code = "rate_limited"

    def __init__(self, detail: str, *, reset_ms: int) -> None:
        super().__init__(detail)
        self.reset_ms = reset_ms


class StaleEpoch(BrokerError):
    """The caller acts on an assignment that has since been replaced."""

    code = "stale_epoch"


class SessionNotLive(BrokerError):
    code = "session_not_live"


class TransitionRefused(BrokerError):
    """The store refused a lifecycle move the table does not allow; names both states."""

    code = "transition_refused"

    def __init__(self, kind: str, ident: str, current: str, wanted: str) -> None:
        super().__init__(f"{kind} {ident} cannot go from {current} to {wanted}", field="state")
        self.kind, self.ident, self.current, self.wanted = kind, ident, current, wanted


class IpConflict(BrokerError):
    """A live instance's private IP never changes."""

    code = "ip_conflict"


class NotServed(BrokerError):
    """An agent reported on a session its instance does not serve."""

    code = "not_served"


class NonceMismatch(BrokerError):
    """A registration of a known instance without the nonce its first one bound (a replay)."""

    code = "nonce_mismatch"


class StoreUnavailable(BrokerError):
    """Redis is briefly unreachable, loading or failing over: retry shortly."""

    code = "unavailable"


@dataclass(frozen=True, slots=True)
class Session:
    """A session as the broker knows it (secret included: callers guard it)."""

    session_id: str
    client_id: str
    secret: str
    state: SessionState
    regions: tuple[str, ...]
    created_ms: int
    model: str = ""
    configuration: str = "{}"
    region: str | None = None
    instance_id: str | None = None
    private_ip: str | None = None
    epoch: int | None = None
    claim_deadline_ms: int | None = None
    queue_regions: tuple[str, ...] = ()
    queue_deadline_ms: int | None = None
    ticket: int | None = None
    replaced: int = 0
    """How often it lost its instance and was placed again (bounded by
    BrokerSettings.max_replacements)."""
    requeued_ms: int | None = None  # when it last went back to the queue
    requeued_from: str | None = None  # "instance id:epoch" it last lost
    end_reason: EndReason | None = None
    ended_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """What `create_session` decided. `existing` marks an idempotent repeat."""

    session: Session
    existing: bool = False
    position: int | None = None
    estimated_wait_s: int | None = None

    @property
    def assigned(self) -> bool:
        return self.session.state in (SessionState.ASSIGNED, SessionState.CONNECTED)


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    state: InstanceState
    session_id: str | None
    epoch: int
    claim_deadline_ms: int | None
    commands: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EndResult:
    ended_now: bool
    state: SessionState
    reason: EndReason | None


@dataclass(frozen=True, slots=True)
class RegionSnapshot:
    region: str
    instances: dict[str, int]
    queue_depth: int
    live_sessions: int
    constrained: bool = False
    constraint_reason: str = ""


@dataclass(slots=True)
class ReapReport:
    ended: dict[str, int] = field(default_factory=dict)
    binds: int = 0

    def count(self, reason: str) -> None:
        self.ended[reason] = self.ended.get(reason, 0) + 1


def check_client_id(client_id: str) -> None:
    if not ids.CLIENT_ID.matches(client_id):
        raise InvalidArgument(f"client_id must be {ids.CLIENT_ID.description}", field="client_id")


def check_instance_id(instance_id: str) -> None:
    if not ids.INSTANCE_ID.matches(instance_id):
        raise InvalidArgument(
            f"instance_id must be {ids.INSTANCE_ID.description}", field="instance_id"
        )
