"""Instance and session lifecycles: one enum each, transitions checked here only.

Both planes import this module: the control plane's Redis scripts enforce the
same tables (control_plane/lua/*.lua refuse any transition not listed here;
tests/unit/test_lifecycle.py keeps the two in step), and the agent reports
states by these names.
"""

from __future__ import annotations

from enum import StrEnum


class InstanceState(StrEnum):
    PROVISIONING = "provisioning"
    """Asked of the cloud; no agent has spoken yet."""
    BOOTING = "booting"
    """The agent registered; the renderer is loading."""
    READY = "ready"
    """Idle, renderer loaded, heartbeat fresh: the only assignable state."""
    RESERVED = "reserved"
    """Given to a session; the claim TTL runs until the client connects."""
    STREAMING = "streaming"
    """The client connected; media flows."""
    RECYCLING = "recycling"
    """The session ended; the agent resets the renderer, then reports ready."""
    DRAINING = "draining"
    """Takes no new session; terminated once idle."""
    TERMINATED = "terminated"
    """Gone for good."""
    LOST = "lost"
    """Heartbeats stopped; its session (if any) ended as instance_lost."""


class SessionState(StrEnum):
    QUEUED = "queued"
    """Waiting for capacity in one of the regions it accepts."""
    ASSIGNED = "assigned"
    """An instance is reserved; the client must connect within the claim TTL."""
    CONNECTED = "connected"
    """The client is (or recently was) streaming from its instance."""
    ENDED = "ended"
    """Final; `end_reason` says why."""


class EndReason(StrEnum):
    CLIENT_ENDED = "client_ended"
    CLAIM_EXPIRED = "claim_expired"
    DISCONNECTED = "disconnected"
    IDLE = "idle"
    MAX_DURATION = "max_duration"
    INSTANCE_LOST = "instance_lost"
    QUEUE_TIMEOUT = "queue_timeout"
    DRAINED = "drained"


_I = InstanceState
INSTANCE_TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    _I.PROVISIONING: frozenset({_I.BOOTING, _I.DRAINING, _I.LOST}),
    _I.BOOTING: frozenset({_I.READY, _I.DRAINING, _I.LOST}),
    _I.READY: frozenset({_I.RESERVED, _I.DRAINING, _I.LOST}),
    _I.RESERVED: frozenset({_I.STREAMING, _I.RECYCLING, _I.DRAINING, _I.LOST}),
    _I.STREAMING: frozenset({_I.RECYCLING, _I.DRAINING, _I.LOST}),
    _I.RECYCLING: frozenset({_I.READY, _I.DRAINING, _I.LOST}),
    # A lost instance that heartbeats again must reset before it serves anyone.
    _I.LOST: frozenset({_I.RECYCLING, _I.DRAINING, _I.TERMINATED}),
    _I.DRAINING: frozenset({_I.TERMINATED}),
    _I.TERMINATED: frozenset(),
}

_S = SessionState
SESSION_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    _S.QUEUED: frozenset({_S.ASSIGNED, _S.ENDED}),
    _S.ASSIGNED: frozenset({_S.CONNECTED, _S.ENDED}),
    _S.CONNECTED: frozenset({_S.ENDED}),
    _S.ENDED: frozenset(),
}

LIVE_SESSION_STATES = frozenset({_S.QUEUED, _S.ASSIGNED, _S.CONNECTED})
SERVING_INSTANCE_STATES = frozenset({_I.RESERVED, _I.STREAMING})


class TransitionError(ValueError):
    """A transition the lifecycle does not allow; names both states."""

    def __init__(self, kind: str, current: str, wanted: str) -> None:
        super().__init__(f"{kind} cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


def check_instance_transition(current: InstanceState, wanted: InstanceState) -> None:
    if wanted not in INSTANCE_TRANSITIONS[current]:
        raise TransitionError("instance", current, wanted)


def check_session_transition(current: SessionState, wanted: SessionState) -> None:
    if wanted not in SESSION_TRANSITIONS[current]:
        raise TransitionError("session", current, wanted)
