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
    """Heartbeats stopped; its session (if any) is re-placed (docs/design.md)."""


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
# Why each edge exists (docs/design.md, "Lifecycle tables", says the same in prose):
INSTANCE_TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    # The cloud launched it; its agent registers (booting). Ops may drain it
    # before it ever boots; it may never heartbeat at all (lost).
    _I.PROVISIONING: frozenset({_I.BOOTING, _I.DRAINING, _I.LOST}),
    # The renderer loaded (ready), ops drained it, or it went silent.
    _I.BOOTING: frozenset({_I.READY, _I.DRAINING, _I.LOST}),
    # Assigned to a session (reserved), drained, or went silent; its renderer
    # crashed while idle, so it must reset before it serves anyone (recycling).
    _I.READY: frozenset({_I.RESERVED, _I.RECYCLING, _I.DRAINING, _I.LOST}),
    # The client connected (streaming); the reservation was withdrawn before any
    # client touched the GPU, e.g. a bind lost a race (ready, no reset needed);
    # the session ended otherwise (recycling, or draining if ops asked); lost.
    _I.RESERVED: frozenset({_I.STREAMING, _I.READY, _I.RECYCLING, _I.DRAINING, _I.LOST}),
    # The session ended (recycling, or draining if ops asked), or it went silent.
    _I.STREAMING: frozenset({_I.RECYCLING, _I.DRAINING, _I.LOST}),
    # The agent reset the renderer (ready), drained, or went silent.
    _I.RECYCLING: frozenset({_I.READY, _I.DRAINING, _I.LOST}),
    # A lost instance that speaks again must reset before it serves anyone
    # (recycling); ops may drain it; the cloud may take it away (terminated).
    _I.LOST: frozenset({_I.RECYCLING, _I.DRAINING, _I.TERMINATED}),
    # Idle and out of service: the pool manager (or the cloud) terminates it,
    # or it dies before that (lost, then terminated by the cloud).
    _I.DRAINING: frozenset({_I.TERMINATED, _I.LOST}),
    # Final: an instance id is never reused.
    _I.TERMINATED: frozenset(),
}
# States an instance may be created in: the cloud's launch (provisioning) or an
# agent registering an instance nobody announced (booting).
INSTANCE_INITIAL = frozenset({_I.PROVISIONING, _I.BOOTING})

_S = SessionState
SESSION_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    _S.QUEUED: frozenset({_S.ASSIGNED, _S.ENDED}),
    # Its instance was lost (or its renderer crashed) before or while the
    # client streamed: re-placed, it waits at the head of its queues (queued).
    _S.ASSIGNED: frozenset({_S.CONNECTED, _S.QUEUED, _S.ENDED}),
    _S.CONNECTED: frozenset({_S.QUEUED, _S.ENDED}),
    _S.ENDED: frozenset(),
}
SESSION_INITIAL = frozenset({_S.QUEUED})

LIVE_SESSION_STATES = frozenset({_S.QUEUED, _S.ASSIGNED, _S.CONNECTED})
SERVING_INSTANCE_STATES = frozenset({_I.RESERVED, _I.STREAMING})


class TransitionError(ValueError):
    """A transition the lifecycle does not allow; names both states."""

    def __init__(self, kind: str, current: str, wanted: str) -> None:
        super().__init__(f"{kind} cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


def instance_move_allowed(current: InstanceState | None, wanted: InstanceState) -> bool:
    """`current` None: the instance does not exist yet. A move to the same
    state is a no-op, always allowed."""
    if current is None:
        return wanted in INSTANCE_INITIAL
    return current == wanted or wanted in INSTANCE_TRANSITIONS[current]


def check_instance_transition(current: InstanceState, wanted: InstanceState) -> None:
    if not instance_move_allowed(current, wanted):
        raise TransitionError("instance", current, wanted)


def check_session_transition(current: SessionState, wanted: SessionState) -> None:
    if wanted not in SESSION_TRANSITIONS[current]:
        raise TransitionError("session", current, wanted)
