"""The agent's session lifecycle: pure state, time passed in, effects returned.

docs/agent.md "Lifecycle the agent enforces": a session is assigned (claim TTL running),
connected, and ends with a reason. The agent enforces the parts only it can
see: claim expiry, the reconnect window, input idleness, maximum duration and
renderer crashes. Every method returns the effects the I/O shell must carry
out (report an event, disconnect the player, reset the renderer), so the whole
policy is unit-tested with a fake clock and no sockets.

The control plane stays the source of truth: an assignment it withdraws (or
an `end_session` command) ends the session here silently, because the control
plane already knows why it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from regional_stack.signalling import closing
from streamfleet.ids import is_session_id
from streamfleet.lifecycle import EndReason, InstanceState, check_instance_transition
from streamfleet.tokens import StreamClaims
from streamfleet.wire import (
    AgentEventType,
    Assignment,
    EndedSession,
    RegisterResponse,
    ServedSession,
)

# The control plane ended the session and did not say why (client_ended,
# drained, ...): the player learns the reason from the session API.
ENDED_BY_CONTROL_PLANE = "ended_by_control_plane"
# The close reason a player sees when the renderer crashed under its session:
# not an end, the control plane re-places the session (docs/agent.md).
REPLACED = closing.SESSION_REPLACED


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The session timeouts; the control plane's registration answer sets them
    (`from_register`), so the two planes cannot disagree. The defaults only
    cover the moments before the first registration, when no session exists."""

    claim_ttl_s: float = 90.0
    reconnect_window_s: float = 60.0
    idle_timeout_s: float = 600.0
    max_duration_s: float = 7200.0

    @classmethod
    def from_register(cls, answer: RegisterResponse) -> Timeouts:
        return cls(
            claim_ttl_s=answer.claim_ttl_s,
            reconnect_window_s=answer.reconnect_window_s,
            idle_timeout_s=answer.idle_timeout_s,
            max_duration_s=answer.max_duration_s,
        )


@dataclass(frozen=True, slots=True)
class Report:
    """An event for the control plane's agent API (`POST /v1/agents/events`)."""

    type: AgentEventType
    session_id: str | None
    epoch: int | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DisconnectPlayer:
    """Close the player: for good when the session is over (`reason`: why), or
    (`final` False) so that it reconnects: the session lives on elsewhere."""

    reason: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class ResetRenderer:
    pass


Effect = Report | DisconnectPlayer | ResetRenderer


class Verdict(Enum):
    ACCEPT = "accept"
    REFRESH = "refresh"  # a newer epoch than we know: ask the control plane, then re-check
    # A newer epoch, but the renderer is (re)starting, so no assignment is taken
    # now: wait until it is ready, then refresh. Refusing would look final to a
    # player whose assignment is seconds away (after the last session's reset).
    WAIT = "wait"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    verdict: Verdict
    status: int = 200
    reason: str = ""


@dataclass(slots=True)
class LiveSession:
    session_id: str
    epoch: int
    claim_deadline: float
    connected_at: float | None = None
    player_present: bool = False
    disconnected_at: float | None = None
    last_input_at: float = 0.0
    # The renderer said the media to the player stalled, and it has not said it
    # flows again since: the outage's reconnect window runs from here, across
    # reconnects that bring no media (docs/operations.md "TURN (coturn) fails").
    media_lost_at: float | None = None
    # What the control plane was last told: the player is there (connected or
    # reconnected) or gone (client_disconnected).
    reported_present: bool = False


class AgentCore:
    def __init__(
        self, *, instance_id: str, private_ip: str, timeouts: Timeouts | None = None
    ) -> None:
        self.instance_id = instance_id
        self.private_ip = private_ip
        self.timeouts = timeouts or Timeouts()
        self.state = InstanceState.BOOTING
        self.session: LiveSession | None = None
        self.renderer_up = False
        self.draining = False
        # Assignments at or below this epoch are over here, whatever a late
        # heartbeat answer still says.
        self.last_ended_epoch = 0
        self.ended: list[tuple[str, str]] = []  # (session_id, reason), newest last
        # The last session this agent ended itself, repeated at every heartbeat
        # (its event may be lost; and the control plane tells a session this
        # agent ended from one it lost by it).
        self.last_ended: EndedSession | None = None

    def _move(self, wanted: InstanceState) -> None:
        """Every state change goes through streamfleet.lifecycle's one table."""
        if wanted is not self.state:
            check_instance_transition(self.state, wanted)
            self.state = wanted

    # -- renderer ----------------------------------------------------------
    def renderer_ready(self, now: float) -> list[Effect]:
        self.renderer_up = True
        if self.state in (InstanceState.BOOTING, InstanceState.RECYCLING):
            self._move(InstanceState.DRAINING if self.draining else InstanceState.READY)
            return [Report("ready", None, None)]
        return []

    def renderer_crashed(self, now: float, detail: dict[str, Any]) -> list[Effect]:
        self.renderer_up = False
        s = self.session
        effects: list[Effect] = [
            Report("renderer_crashed", s.session_id if s else None, s.epoch if s else None, detail)
        ]
        if s is not None:
            # The GPU can no longer serve this session. The renderer_crashed
            # report alone hands it back: the control plane re-places it (here
            # again once the supervisor's restart is ready, or on another ready
            # instance first) and its player follows (docs/agent.md).
            effects += self._end(EndReason.INSTANCE_LOST, reset=False, report=False)
        # Without a session the state stays (the table has no ready -> recycling
        # edge): `renderer_up` is False, so no assignment is taken until the
        # supervisor's restart connects again.
        return effects

    # -- control plane -----------------------------------------------------
    def apply_assignment(self, assignment: Assignment | None, now: float) -> list[Effect]:
        s = self.session
        if assignment is not None and assignment.epoch <= self.last_ended_epoch:
            return []  # over here already; the control plane has not heard yet
        if assignment is None:
            return self._end(None, reset=True) if s is not None else []
        if s is not None:
            if assignment.epoch == s.epoch:
                return []
            # Superseded: the control plane moved on; end ours, take the new one when ready.
            return self._end(None, reset=True)
        if not self.takes_assignments:
            return []  # picked up by a later heartbeat, once we are ready again
        deadline = assignment.claim_expires_unix or now + self.timeouts.claim_ttl_s
        self._move(InstanceState.RESERVED)
        self.session = LiveSession(assignment.session_id, assignment.epoch, deadline)
        return []

    def command(self, name: str, now: float) -> list[Effect]:
        if name == "drain":
            self.draining = True
            if self.state is InstanceState.READY:
                self._move(InstanceState.DRAINING)
            return []
        if name == "end_session" and self.session is not None:
            return self._end(None, reset=True)
        return []

    @property
    def takes_assignments(self) -> bool:
        """An assignment is taken now (`apply_assignment`), not left for a later heartbeat."""
        return self.state is InstanceState.READY and self.renderer_up

    # -- player --------------------------------------------------------------
    def check_token(self, claims: StreamClaims, *, may_refresh: bool) -> TokenCheck:
        if claims.instance_id != self.instance_id or claims.private_ip != self.private_ip:
            return TokenCheck(Verdict.REFUSE, 403, "token is for another instance")
        s = self.session
        if s is None or claims.epoch > s.epoch:
            if claims.epoch <= self.last_ended_epoch:
                return TokenCheck(Verdict.REFUSE, 403, "session is over (stale epoch)")
            if s is None and not self.takes_assignments and not self.draining:
                return TokenCheck(Verdict.WAIT, 503, "the renderer is starting")
            if may_refresh:
                return TokenCheck(Verdict.REFRESH)
            return TokenCheck(Verdict.REFUSE, 403, "epoch is not this instance's assignment")
        if claims.epoch < s.epoch or claims.session_id != s.session_id:
            return TokenCheck(Verdict.REFUSE, 403, "stale epoch")
        if s.player_present:
            return TokenCheck(Verdict.REFUSE, 409, "another player is connected")
        return TokenCheck(Verdict.ACCEPT)

    def player_connected(self, now: float) -> list[Effect]:
        s = self._require_session()
        first = s.connected_at is None
        s.player_present = True
        s.disconnected_at = None
        s.last_input_at = now
        if first:
            s.connected_at = now
        self._move(InstanceState.STREAMING)
        if not first and s.media_lost_at is not None:
            # Back on signalling, but media is not confirmed yet: reported as
            # reconnected when the renderer says it flows (`media`).
            return []
        s.reported_present = True
        kind: AgentEventType = "client_connected" if first else "client_reconnected"
        return [Report(kind, s.session_id, s.epoch)]

    def player_disconnected(self, now: float) -> list[Effect]:
        s = self.session
        if s is None or not s.player_present:
            return []
        s.player_present = False
        s.disconnected_at = now
        if not s.reported_present:
            return []  # a reconnect that never got media: still gone for the control plane
        s.reported_present = False
        return [Report("client_disconnected", s.session_id, s.epoch)]

    def media(self, state: str, now: float) -> list[Effect]:
        """The renderer's media watch (`streamfleetMedia`) about the current player:
        `stalled` starts the outage (the hub then closes the player, which reports
        the disconnect); `flowing` ends it, and a player that came back during it
        is reported reconnected only now."""
        s = self.session
        if s is None or s.connected_at is None:
            return []
        if state == "stalled":
            if s.media_lost_at is None:
                s.media_lost_at = now
            return []
        s.media_lost_at = None
        if s.player_present and not s.reported_present:
            s.reported_present = True
            return [Report("client_reconnected", s.session_id, s.epoch)]
        return []

    def input_activity(self, now: float) -> None:
        """User input reached the renderer (or the page said so): not idle."""
        if self.session is not None and self.session.player_present:
            self.session.last_input_at = now

    # -- time ------------------------------------------------------------------
    def tick(self, now: float) -> list[Effect]:
        s = self.session
        if s is None:
            return []
        t = self.timeouts
        if s.connected_at is None:
            if now >= s.claim_deadline:
                return self._end(EndReason.CLAIM_EXPIRED)
            return []
        if now - s.connected_at >= t.max_duration_s:
            return self._end(EndReason.MAX_DURATION)
        if s.media_lost_at is not None and now - s.media_lost_at >= t.reconnect_window_s:
            # Players kept coming back (Epic's library retries for ever) but no
            # media reached them within the window: as gone as a closed socket.
            return self._end(EndReason.DISCONNECTED)
        if not s.player_present and s.disconnected_at is not None:
            if now - s.disconnected_at >= t.reconnect_window_s:
                return self._end(EndReason.DISCONNECTED)
        elif s.player_present and now - s.last_input_at >= t.idle_timeout_s:
            return self._end(EndReason.IDLE)
        return []

    @property
    def max_epoch(self) -> int:
        """The highest epoch assigned here, live or ended: reported at every
        registration and heartbeat, so the control plane never issues one at or
        below it, even after its Redis forgot (docs/operations.md)."""
        s = self.session
        return max(self.last_ended_epoch, s.epoch if s else 0)

    def heartbeat_fields(self) -> dict[str, Any]:
        s = self.session
        return {
            "state": str(self.state),
            "session_id": s.session_id if s else None,
            "epoch": s.epoch if s else None,
            "max_epoch": self.max_epoch,
            "ended": self.last_ended,
        }

    def served(self) -> ServedSession | None:
        """The session this agent still serves, for a registration: after Redis lost
        data the control plane rebuilds it from this instead of ending it."""
        s = self.session
        if s is None or not is_session_id(s.session_id):
            return None
        return ServedSession(
            session_id=s.session_id, epoch=s.epoch, connected=s.connected_at is not None
        )

    # -- internals ---------------------------------------------------------------
    def _require_session(self) -> LiveSession:
        if self.session is None:
            raise RuntimeError(f"no session while {self.state}")
        return self.session

    def _end(
        self, reason: EndReason | None, *, reset: bool = True, report: bool = True
    ) -> list[Effect]:
        """End the live session; `reason=None` means the control plane ended it;
        `report=False`: another report already tells the control plane."""
        s = self._require_session()
        effects: list[Effect] = []
        if s.player_present and not report:
            # Not over: re-placed. A retryable close; the player follows the new
            # assignment on the session's event stream.
            effects.append(DisconnectPlayer(REPLACED, final=False))
        elif s.player_present:
            effects.append(DisconnectPlayer(str(reason or ENDED_BY_CONTROL_PLANE)))
        if reason is not None and report:
            effects.append(Report("session_ended", s.session_id, s.epoch, {"reason": str(reason)}))
        if reset:
            effects.append(ResetRenderer())
            self.renderer_up = False
        self.ended.append((s.session_id, str(reason or ENDED_BY_CONTROL_PLANE)))
        self.last_ended_epoch = max(self.last_ended_epoch, s.epoch)
        self.last_ended = (
            EndedSession(session_id=s.session_id, epoch=s.epoch, reason=reason)
            if reason is not None and is_session_id(s.session_id) and s.epoch >= 1
            else None
        )
        self._move(InstanceState.RECYCLING)
        self.session = None
        return effects
