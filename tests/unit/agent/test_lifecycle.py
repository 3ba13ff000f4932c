"""The agent's lifecycle policy, driven by a fake clock (plain floats)."""

from __future__ import annotations

import pytest

from regional_stack.agent.lifecycle import (
    REPLACED,
    AgentCore,
    DisconnectPlayer,
    Effect,
    Report,
    ResetRenderer,
    Timeouts,
    Verdict,
)
from streamfleet.lifecycle import INSTANCE_TRANSITIONS, EndReason, InstanceState, TransitionError
from streamfleet.tokens import StreamClaims
from streamfleet.wire import Assignment, EndedSession, RegisterResponse, ServedSession

T = Timeouts(claim_ttl_s=90, reconnect_window_s=60, idle_timeout_s=600, max_duration_s=3600)
IID, IP = "i-1", "10.0.0.5"


def ready_core(now: float = 0.0) -> AgentCore:
    core = AgentCore(instance_id=IID, private_ip=IP, timeouts=T)
    assert core.state is InstanceState.BOOTING
    assert core.renderer_ready(now) == [Report("ready", None, None)]
    assert core.state is InstanceState.READY
    return core


def claims(epoch: int = 1, session: str = "s1", **kw: object) -> StreamClaims:
    base: dict[str, object] = {
        "session_id": session,
        "instance_id": IID,
        "private_ip": IP,
        "epoch": epoch,
        "expires_unix": 10**9,
    }
    base.update(kw)
    return StreamClaims(**base)  # type: ignore[arg-type]


def reasons(effects: list[Effect]) -> list[str]:
    return [
        e.detail["reason"] for e in effects if isinstance(e, Report) and e.type == "session_ended"
    ]


def streaming_core(now: float = 0.0) -> AgentCore:
    core = ready_core(now)
    core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=now + 90), now)
    assert core.check_token(claims(), may_refresh=False).verdict is Verdict.ACCEPT
    assert core.player_connected(now) == [Report("client_connected", "s1", 1)]
    assert core.state is InstanceState.STREAMING
    return core


def test_assignment_reserves_and_claim_expires() -> None:
    core = ready_core()
    assert (
        core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=90.0), 0.0)
        == []
    )
    assert core.state is InstanceState.RESERVED
    assert core.tick(89.9) == []
    effects = core.tick(90.0)
    assert reasons(effects) == ["claim_expired"]
    assert ResetRenderer() in effects
    assert core.state is InstanceState.RECYCLING and core.session is None
    # A late heartbeat still carrying the old assignment does not revive it.
    assert (
        core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=90.0), 91.0)
        == []
    )
    assert core.session is None


def test_claim_ttl_setting_when_control_plane_gives_none() -> None:
    core = ready_core()
    core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=None), 10.0)
    assert core.tick(99.9) == [] and reasons(core.tick(100.0)) == ["claim_expired"]


def test_token_checks() -> None:
    core = ready_core()
    # Unknown assignment: ask the control plane first, refuse afterwards.
    assert core.check_token(claims(), may_refresh=True).verdict is Verdict.REFRESH
    assert core.check_token(claims(), may_refresh=False).status == 403
    core.apply_assignment(Assignment(session_id="s1", epoch=2, claim_expires_unix=90.0), 0.0)
    assert core.check_token(claims(epoch=1), may_refresh=True).reason == "stale epoch"
    assert core.check_token(claims(epoch=2, session="s9"), may_refresh=True).status == 403
    assert core.check_token(claims(epoch=2, instance_id="i-2"), may_refresh=True).status == 403
    assert core.check_token(claims(epoch=2, private_ip="10.0.0.6"), may_refresh=True).status == 403
    assert core.check_token(claims(epoch=3), may_refresh=True).verdict is Verdict.REFRESH
    assert core.check_token(claims(epoch=2), may_refresh=True).verdict is Verdict.ACCEPT
    core.player_connected(1.0)
    busy = core.check_token(claims(epoch=2), may_refresh=True)
    assert (busy.verdict, busy.status) == (Verdict.REFUSE, 409)


def test_a_newer_token_waits_while_the_renderer_restarts() -> None:
    """After a session ends the renderer resets, and the control plane may already
    have given this instance to the next user: that user's token is held (WAIT),
    not refused, until the renderer is ready; an ended epoch is still refused."""
    core = ready_core()
    core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=90.0), 0.0)
    assert core.command("end_session", 1.0) == [ResetRenderer()]
    assert not core.takes_assignments
    held = core.check_token(claims(epoch=2, session="s2"), may_refresh=True)
    assert (held.verdict, held.status) == (Verdict.WAIT, 503)
    assert core.check_token(claims(epoch=1), may_refresh=True).verdict is Verdict.REFUSE
    # Meanwhile the assignment arrives and is left for later, as before.
    assert (
        core.apply_assignment(Assignment(session_id="s2", epoch=2, claim_expires_unix=90.0), 1.5)
        == []
    )
    assert core.session is None
    core.renderer_ready(3.0)
    assert core.takes_assignments
    assert core.check_token(claims(epoch=2, session="s2"), may_refresh=True).verdict is (
        Verdict.REFRESH
    )
    core.apply_assignment(Assignment(session_id="s2", epoch=2, claim_expires_unix=90.0), 3.1)
    assert core.check_token(claims(epoch=2, session="s2"), may_refresh=False).verdict is (
        Verdict.ACCEPT
    )


def test_a_draining_agent_does_not_hold_new_tokens() -> None:
    core = ready_core()
    core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=90.0), 0.0)
    core.command("drain", 0.5)
    core.command("end_session", 1.0)
    assert core.check_token(claims(epoch=2, session="s2"), may_refresh=True).verdict is (
        Verdict.REFRESH
    )


def test_reconnect_within_window_is_the_same_session() -> None:
    core = streaming_core()
    assert core.player_disconnected(10.0) == [Report("client_disconnected", "s1", 1)]
    assert core.tick(69.9) == []
    assert core.check_token(claims(), may_refresh=False).verdict is Verdict.ACCEPT
    assert core.player_connected(69.9) == [Report("client_reconnected", "s1", 1)]
    assert core.tick(200.0) == []


def test_beyond_reconnect_window_ends_disconnected() -> None:
    core = streaming_core()
    core.player_disconnected(10.0)
    effects = core.tick(70.0)
    assert reasons(effects) == ["disconnected"]
    assert not any(isinstance(e, DisconnectPlayer) for e in effects)
    assert core.check_token(claims(), may_refresh=True).status == 403
    assert core.renderer_ready(75.0) == [Report("ready", None, None)]


def test_idle_counts_from_last_input() -> None:
    core = streaming_core()
    core.input_activity(500.0)
    assert core.tick(1099.9) == []
    effects = core.tick(1100.0)
    assert reasons(effects) == ["idle"] and DisconnectPlayer("idle") in effects


def test_max_duration_wins_over_activity() -> None:
    core = streaming_core()
    for t in range(0, 3600, 100):
        core.input_activity(float(t))
        assert core.tick(float(t)) == []
    assert reasons(core.tick(3600.0)) == ["max_duration"]


def test_renderer_crash_hands_the_session_back_for_replacement() -> None:
    core = streaming_core()
    effects = core.renderer_crashed(5.0, {"exit_code": -9})
    assert effects[0] == Report("renderer_crashed", "s1", 1, {"exit_code": -9})
    # No session_ended: the control plane re-places the session on that report,
    # and the player is closed so that it reconnects (to its next assignment).
    assert reasons(effects) == []
    assert [e for e in effects if isinstance(e, DisconnectPlayer)] == [
        DisconnectPlayer(REPLACED, final=False)
    ]
    assert core.session is None and core.max_epoch == 1
    # The supervisor restarts a crashed renderer itself: no extra reset.
    assert ResetRenderer() not in effects
    assert core.state is InstanceState.RECYCLING
    assert core.renderer_ready(6.0) == [Report("ready", None, None)]
    # Re-placed here again at a fresh epoch: taken like any assignment.
    core.apply_assignment(Assignment(session_id="s1", epoch=2, claim_expires_unix=90.0), 6.5)
    assert core.state is InstanceState.RESERVED and core.session is not None


def test_crash_without_session_reports_and_takes_no_assignment_until_back() -> None:
    core = ready_core()
    assert core.renderer_crashed(1.0, {}) == [Report("renderer_crashed", None, None, {})]
    # The lifecycle table has no ready -> recycling edge: the state stays, the
    # renderer is marked down, and an assignment waits for it.
    assert core.state is InstanceState.READY and not core.renderer_up
    a = Assignment(session_id="s1", epoch=1, claim_expires_unix=90.0)
    assert core.apply_assignment(a, 1.5) == [] and core.session is None
    assert core.renderer_ready(2.0) == []
    core.apply_assignment(a, 2.5)
    assert core.state is InstanceState.RESERVED


def test_every_state_change_follows_the_lifecycle_table() -> None:
    """Drive the core through its paths and check each observed move against the table."""
    core = AgentCore(instance_id=IID, private_ip=IP, timeouts=T)
    seen: list[tuple[InstanceState, InstanceState]] = []
    last = core.state

    def step() -> None:
        nonlocal last
        if core.state is not last:
            seen.append((last, core.state))
            last = core.state

    for action in (
        lambda: core.renderer_ready(0.0),
        lambda: core.apply_assignment(
            Assignment(session_id="s1", epoch=1, claim_expires_unix=90.0), 1.0
        ),
        lambda: core.player_connected(2.0),
        lambda: core.player_disconnected(3.0),
        lambda: core.player_connected(4.0),
        lambda: core.tick(4.0 + T.idle_timeout_s),
        lambda: core.renderer_ready(700.0),
        lambda: core.command("drain", 701.0),
    ):
        action()
        step()
    assert seen, "no state change observed"
    for before, after in seen:
        assert after in INSTANCE_TRANSITIONS[before], (before, after)


def test_a_forbidden_move_is_refused_naming_the_state() -> None:
    core = ready_core()
    core.command("drain", 1.0)
    with pytest.raises(TransitionError, match="from draining to reserved"):
        core._move(InstanceState.RESERVED)
    assert core.state is InstanceState.DRAINING


def test_timeouts_come_from_the_registration_answer() -> None:
    answer = RegisterResponse(
        instance_id=IID,
        state=InstanceState.BOOTING,
        heartbeat_interval_s=5,
        claim_ttl_s=30,
        reconnect_window_s=20,
        idle_timeout_s=300,
        max_duration_s=1800,
        agent_token="a1.x.y",
        agent_token_expires_unix=1,
    )
    t = Timeouts.from_register(answer)
    assert (t.claim_ttl_s, t.reconnect_window_s, t.idle_timeout_s, t.max_duration_s) == (
        30,
        20,
        300,
        1800,
    )
    core = ready_core()
    core.timeouts = t
    core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=None), 0.0)
    assert core.tick(29.9) == [] and reasons(core.tick(30.0)) == ["claim_expired"]


def test_control_plane_ending_the_session_is_silent_here() -> None:
    core = streaming_core()
    effects = core.apply_assignment(None, 5.0)
    assert reasons(effects) == []
    assert DisconnectPlayer("ended_by_control_plane") in effects and ResetRenderer() in effects
    core2 = streaming_core()
    assert reasons(core2.command("end_session", 5.0)) == []
    assert core2.session is None


def test_drain_takes_no_new_session() -> None:
    core = ready_core()
    core.command("drain", 1.0)
    assert core.state is InstanceState.DRAINING
    assert (
        core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=90.0), 2.0)
        == []
    )
    assert core.session is None
    core2 = streaming_core()
    core2.command("drain", 1.0)
    assert core2.state is InstanceState.STREAMING  # the live session is left to finish
    core2.player_disconnected(2.0)
    core2.tick(100.0)
    core2.renderer_ready(101.0)
    assert core2.state is InstanceState.DRAINING


def test_heartbeat_fields() -> None:
    core = streaming_core()
    assert core.heartbeat_fields() == {
        "state": "streaming", "session_id": "s1", "epoch": 1, "max_epoch": 1, "ended": None,
    }  # fmt: skip


SID = "0" * 32 + "-" + "1" * 16


def test_max_epoch_and_served_session_survive_the_session() -> None:
    """What a registration reports after the control plane's Redis forgot:
    the highest epoch assigned here, and the session still served."""
    core = ready_core()
    assert core.max_epoch == 0 and core.served() is None
    core.apply_assignment(Assignment(session_id=SID, epoch=7, claim_expires_unix=90.0), 0.0)
    assert core.max_epoch == 7
    assert core.served() == ServedSession(session_id=SID, epoch=7, connected=False)
    core.player_connected(1.0)
    assert core.served() == ServedSession(session_id=SID, epoch=7, connected=True)
    core.command("end_session", 2.0)
    assert core.session is None and core.served() is None
    assert core.max_epoch == 7  # ended, still remembered: the next one must be above it
    assert core.heartbeat_fields()["max_epoch"] == 7


def test_heartbeats_repeat_the_last_end_this_agent_decided() -> None:
    """Its event may be lost; and the control plane tells a session this agent
    ended (settled as the event would be) from one it lost (re-placed) by it."""
    core = ready_core()
    core.apply_assignment(Assignment(session_id=SID, epoch=3, claim_expires_unix=90.0), 0.0)
    core.player_connected(1.0)
    core.tick(1.0 + core.timeouts.idle_timeout_s)
    assert core.heartbeat_fields()["ended"] == EndedSession(
        session_id=SID, epoch=3, reason=EndReason.IDLE
    )
    core.renderer_ready(2000.0)
    core.apply_assignment(Assignment(session_id=SID, epoch=4, claim_expires_unix=9e9), 2001.0)
    core.renderer_crashed(2002.0, {})
    assert core.heartbeat_fields()["ended"] == EndedSession(
        session_id=SID, epoch=4, reason=EndReason.INSTANCE_LOST
    )
    core.renderer_ready(2003.0)
    core.apply_assignment(Assignment(session_id=SID, epoch=5, claim_expires_unix=9e9), 2004.0)
    core.command("end_session", 2005.0)  # the control plane's own end: it knows
    assert core.heartbeat_fields()["ended"] is None


def test_media_stall_is_a_disconnect_and_flowing_media_the_reconnect() -> None:
    """The renderer's media watch: stalled -> the player is closed (the hub), reported
    gone; a player back on signalling counts as reconnected only once media flows."""
    core = streaming_core()
    assert core.media("flowing", 1.0) == []  # the first stream's report: nothing to say
    assert core.media("stalled", 10.0) == []
    assert core.player_disconnected(10.0) == [Report("client_disconnected", "s1", 1)]
    assert core.player_connected(12.0) == []  # signalling back, media not yet
    assert core.state is InstanceState.STREAMING
    assert core.media("flowing", 13.0) == [Report("client_reconnected", "s1", 1)]
    assert core.tick(10.0 + T.reconnect_window_s + 1) == []  # the outage is over
    assert core.session is not None and core.session.media_lost_at is None


def test_reconnects_without_media_do_not_reset_the_window() -> None:
    """Epic's library retries for ever while TURN is down (every attempt is closed
    1011 "no relay candidate"): the window runs from the stall, not the last retry."""
    core = streaming_core()
    core.media("stalled", 10.0)
    assert core.player_disconnected(10.0) == [Report("client_disconnected", "s1", 1)]
    for t in range(12, 70, 7):
        assert core.player_connected(float(t)) == []
        assert core.tick(float(t) + 1) == []
        assert core.player_disconnected(float(t) + 5) == []  # still gone for the control plane
    assert core.player_connected(69.0) == []
    effects = core.tick(10.0 + T.reconnect_window_s)
    assert reasons(effects) == ["disconnected"]
    assert DisconnectPlayer("disconnected") in effects  # the retrying player: a final close
    assert core.state is InstanceState.RECYCLING


def test_media_reports_without_a_connected_session_are_ignored() -> None:
    core = ready_core()
    assert core.media("stalled", 1.0) == []
    core.apply_assignment(Assignment(session_id="s1", epoch=1, claim_expires_unix=90), 1.0)
    assert core.media("stalled", 2.0) == []  # no player has connected yet
    assert core.session is not None and core.session.media_lost_at is None
