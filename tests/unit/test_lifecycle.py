"""One transition table, enforced in Python and (generated) in the Lua scripts."""

from __future__ import annotations

import itertools

import pytest

from control_plane.scripts import REGION_SCRIPTS, script_source, transition_table_lua
from streamfleet.lifecycle import (
    INSTANCE_TRANSITIONS,
    SESSION_TRANSITIONS,
    InstanceState,
    SessionState,
    TransitionError,
    check_instance_transition,
    check_session_transition,
)


def test_every_state_has_a_row() -> None:
    assert set(INSTANCE_TRANSITIONS) == set(InstanceState)
    assert set(SESSION_TRANSITIONS) == set(SessionState)


def test_design_paths_are_allowed() -> None:
    path = ["provisioning", "booting", "ready", "reserved", "streaming", "recycling", "ready"]
    for a, b in itertools.pairwise(path):
        check_instance_transition(InstanceState(a), InstanceState(b))
    for state in InstanceState:
        if state not in (InstanceState.DRAINING, InstanceState.TERMINATED):
            check_instance_transition(state, InstanceState.DRAINING)
    check_instance_transition(InstanceState.DRAINING, InstanceState.TERMINATED)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("ready", "streaming"),
        ("terminated", "ready"),
        ("lost", "ready"),
        ("draining", "ready"),
        ("booting", "reserved"),
    ],
)
def test_forbidden_transitions_name_both_states(current: str, wanted: str) -> None:
    with pytest.raises(TransitionError, match=f"from {current} to {wanted}"):
        check_instance_transition(InstanceState(current), InstanceState(wanted))


def test_only_a_placed_session_goes_back_to_the_queue() -> None:
    """Re-placement: assigned and connected may return to queued; nothing else may."""
    back = {s for s in SessionState if SessionState.QUEUED in SESSION_TRANSITIONS[s]}
    assert back == {SessionState.ASSIGNED, SessionState.CONNECTED}
    check_session_transition(SessionState.CONNECTED, SessionState.QUEUED)
    check_session_transition(SessionState.QUEUED, SessionState.ASSIGNED)


def test_ended_sessions_stay_ended() -> None:
    for state in SessionState:
        with pytest.raises(TransitionError):
            check_session_transition(SessionState.ENDED, state)


def test_lua_table_is_generated_from_the_python_table() -> None:
    lua = transition_table_lua()
    for state, nexts in INSTANCE_TRANSITIONS.items():
        row = next(line for line in lua.splitlines() if line.strip().startswith(f"{state.value} ="))
        assert {n.value for n in nexts} == {
            part.split("=")[0].strip()
            for part in row.split("{", 1)[1].rstrip("},").split(",")
            if "=" in part
        }
    for name in REGION_SCRIPTS:
        assert script_source(name).startswith(lua)
