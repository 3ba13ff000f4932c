"""Agent metrics: figures read at scrape time, hooks counted, reported latency checked."""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from regional_stack.agent.metrics import AgentMetrics, input_to_frame_s
from streamfleet.lifecycle import InstanceState


def fake_agent(**overrides: Any) -> SimpleNamespace:
    # The split agent's shape (regional_stack.agent.context.Agent), only what is read.
    agent = SimpleNamespace(
        control=SimpleNamespace(registered=True),
        core=SimpleNamespace(state=InstanceState.STREAMING, renderer_up=True),
        supervisor=SimpleNamespace(restarts=3, crashes=1),
        hub=SimpleNamespace(
            player=object(),
            message_counts=Counter({("player", "offer"): 2, ("streamer", "answer"): 1}),
        ),
    )
    for key, value in overrides.items():
        setattr(agent, key, value)
    return agent


def scrape(m: AgentMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(m.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_the_agent_figures_are_read_when_scraped() -> None:
    m = AgentMetrics()
    agent = fake_agent()
    m.watch(agent)
    got = scrape(m)
    assert got["streamfleet_agent_instance_state", (("state", "streaming"),)] == 1
    assert got["streamfleet_agent_instance_state", (("state", "ready"),)] == 0
    assert got["streamfleet_agent_renderer_restarts_total", ()] == 3
    assert got["streamfleet_agent_renderer_crashes_total", ()] == 1
    assert got["streamfleet_agent_player_connected", ()] == 1
    assert got["streamfleet_agent_registered", ()] == 1
    offers = (("sender", "player"), ("type", "offer"))
    assert got["streamfleet_agent_signalling_messages_total", offers] == 2
    agent.supervisor.restarts = 4
    agent.core.state = InstanceState.RECYCLING
    agent.control.registered = False
    got = scrape(m)
    assert got["streamfleet_agent_registered", ()] == 0
    assert got["streamfleet_agent_renderer_restarts_total", ()] == 4
    assert got["streamfleet_agent_instance_state", (("state", "recycling"),)] == 1


def test_hooks_count_events_ends_and_players() -> None:
    m = AgentMetrics()
    m.report("client_connected")
    m.session_ended("idle")
    m.player("accepted")
    m.player("busy")
    m.stats({"type": "stats", "data": {"inputToFrameMs": 80}})
    m.stats({"type": "stats", "data": {"inputToFrameMs": "80"}})  # not a number: ignored
    got = scrape(m)
    assert got["streamfleet_agent_session_events_total", (("event", "client_connected"),)] == 1
    assert got["streamfleet_agent_session_events_total", (("event", "renderer_crashed"),)] == 0
    assert got["streamfleet_agent_sessions_ended_total", (("reason", "idle"),)] == 1
    assert got["streamfleet_agent_sessions_ended_total", (("reason", "drained"),)] == 0
    assert got["streamfleet_agent_player_connections_total", (("outcome", "busy"),)] == 1
    assert got["streamfleet_agent_input_to_frame_seconds_count", ()] == 1
    assert math.isclose(got["streamfleet_agent_input_to_frame_seconds_sum", ()], 0.08)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"data": {"inputToFrameMs": 120}}, 0.12),
        ({"data": {"inputToFrameMs": 0}}, 0.0),
        ({"data": {"inputToFrameMs": -5}}, None),
        ({"data": {"inputToFrameMs": 61_000}}, None),
        ({"data": {"inputToFrameMs": float("nan")}}, None),
        ({"data": {"inputToFrameMs": True}}, None),
        ({"data": {}}, None),
        ({"data": "x"}, None),
        # Epic's protocol: `data` is a string, the page JSON-encodes its figures.
        ({"data": '{"inputToFrameMs": 35}'}, 0.035),
        ({"data": '{"inputToFrameMs": NaN}'}, None),
        ({"data": "[1, 2]"}, None),
        ({"data": '{"inputToFrameMs": 35, "pad": "' + "x" * 5000 + '"}'}, None),
        ({}, None),
    ],
)
def test_input_to_frame_from_a_stats_message(
    message: dict[str, Any], expected: float | None
) -> None:
    assert input_to_frame_s(message) == expected


def test_media_reports_counted_by_state_from_zero() -> None:
    m = AgentMetrics()
    got = scrape(m)
    assert got["streamfleet_agent_media_reports_total", (("state", "stalled"),)] == 0
    m.media_report("stalled")
    m.media_report("flowing")
    m.media_report("stalled")
    got = scrape(m)
    assert got["streamfleet_agent_media_reports_total", (("state", "stalled"),)] == 2
    assert got["streamfleet_agent_media_reports_total", (("state", "flowing"),)] == 1
