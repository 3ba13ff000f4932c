"""The agent's Prometheus metrics, served on `private_ip:metrics_port/metrics`.

Counters that only the agent's I/O shell sees are pushed in by small hooks
(`report`, `player`, `input_to_frame`); everything the agent already keeps
(instance state, renderer restarts and crashes, signalling message counts) is
read at scrape time by `AgentCollector`, so the hot paths carry no extra code.

Metric names follow Prometheus conventions: `streamfleet_agent_*`, `_total`
for counters, base units (seconds).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, get_args

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from regional_stack.agent.lifecycle import ENDED_BY_CONTROL_PLANE
from streamfleet import strict_json
from streamfleet.lifecycle import EndReason, InstanceState
from streamfleet.wire import AgentEventType

if TYPE_CHECKING:  # context.py builds the Agent with its metrics: no import at run time
    from regional_stack.agent.context import Agent

# Input-to-frame on a warm instance is tens to hundreds of milliseconds.
INPUT_TO_FRAME_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
MAX_PLAUSIBLE_INPUT_TO_FRAME_S = 60.0
# Every event type the agent reports (streamfleet.wire), so each has a series from the start.
REPORTED_EVENTS = get_args(AgentEventType)


class AgentCollector(Collector):
    """Reads the agent's own figures when Prometheus scrapes: the core's state, the
    control link's registration, the hub's player and message counts, the
    supervisor's restarts and crashes."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        state = GaugeMetricFamily(
            "streamfleet_agent_instance_state",
            "1 for the instance's current lifecycle state, 0 for the others",
            labels=["state"],
        )
        current = agent.core.state
        for s in InstanceState:
            state.add_metric([s.value], 1.0 if s is current else 0.0)
        yield state
        yield GaugeMetricFamily(
            "streamfleet_agent_registered",
            "1 when the control plane has accepted this agent's registration",
            value=1.0 if agent.control.registered else 0.0,
        )
        yield GaugeMetricFamily(
            "streamfleet_agent_renderer_up",
            "1 when the renderer is connected as a streamer",
            value=1.0 if agent.core.renderer_up else 0.0,
        )
        yield GaugeMetricFamily(
            "streamfleet_agent_player_connected",
            "1 while a player's signalling connection is open",
            value=1.0 if agent.hub.player is not None else 0.0,
        )
        restarts = CounterMetricFamily(
            "streamfleet_agent_renderer_restarts",
            "Renderer restarts (after a crash, or a reset between sessions)",
        )
        restarts.add_metric([], float(agent.supervisor.restarts))
        yield restarts
        crashes = CounterMetricFamily(
            "streamfleet_agent_renderer_crashes", "Renderer exits the agent did not ask for"
        )
        crashes.add_metric([], float(agent.supervisor.crashes))
        yield crashes
        messages = CounterMetricFamily(
            "streamfleet_agent_signalling_messages",
            "Signalling messages received, by sender (player, streamer) and message type",
            labels=["sender", "type"],
        )
        for (sender, kind), count in sorted(agent.hub.message_counts.items()):
            messages.add_metric([sender, kind], float(count))
        yield messages


class AgentMetrics:
    """One registry per agent (tests run several agents in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.events = Counter(
            "streamfleet_agent_session_events",
            "Session lifecycle events the agent reported to the control plane, by type",
            ["event"],
            registry=r,
        )
        self.ended = Counter(
            "streamfleet_agent_sessions_ended",
            "Sessions the agent ended, by end reason",
            ["reason"],
            registry=r,
        )
        self.players = Counter(
            "streamfleet_agent_player_connections",
            "Player signalling connections, by outcome (accepted or the refusal kind)",
            ["outcome"],
            registry=r,
        )
        self.input_to_frame = Histogram(
            "streamfleet_agent_input_to_frame_seconds",
            "Input-to-frame latency as reported by the player (signalling `stats`)",
            buckets=INPUT_TO_FRAME_BUCKETS,
            registry=r,
        )
        self.media = Counter(
            "streamfleet_agent_media_reports",
            "The renderer's media watch about the current player (streamfleetMedia), by state:"
            " stalled (the media path died) or flowing",
            ["state"],
            registry=r,
        )
        # Known label values exist from the start (at 0), so queries and alerts see them.
        for event in REPORTED_EVENTS:
            self.events.labels(event)
        for reason in [*(r.value for r in EndReason), ENDED_BY_CONTROL_PLANE]:
            self.ended.labels(reason)
        self.players.labels("accepted")
        for state in ("stalled", "flowing"):
            self.media.labels(state)

    def watch(self, agent: Agent) -> None:
        self.registry.register(AgentCollector(agent))

    # -- hooks ---------------------------------------------------------------
    def report(self, event: str) -> None:
        self.events.labels(event).inc()

    def session_ended(self, reason: str) -> None:
        self.ended.labels(reason).inc()

    def media_report(self, state: str) -> None:
        self.media.labels(state).inc()

    def player(self, outcome: str) -> None:
        self.players.labels(outcome).inc()

    def stats(self, message: Mapping[str, Any]) -> None:
        """A player's `stats` message; `data.inputToFrameMs` is observed when plausible."""
        seconds = input_to_frame_s(message)
        if seconds is not None:
            self.input_to_frame.observe(seconds)

    # -- serving -------------------------------------------------------------
    def app(self) -> web.Application:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app

    async def serve(self, host: str, port: int) -> web.AppRunner:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner


# A stats string longer than this is not parsed (it is only ever a few figures).
MAX_STATS_DATA_CHARS = 4096


def input_to_frame_s(message: Mapping[str, Any]) -> float | None:
    """Seconds from a `stats` message's `data.inputToFrameMs`, or None if absent or absurd.

    Epic's protocol types `data` as a string (the library sends it JSON-encoded);
    older frontends sent an object. Both are read; anything else is ignored."""
    data = message.get("data")
    if isinstance(data, str) and len(data) <= MAX_STATS_DATA_CHARS:
        try:
            data = strict_json.loads(data, max_bytes=MAX_STATS_DATA_CHARS * 4)
        except strict_json.JsonRefused:  # deep, non-finite, duplicated: not a figure
            return None
    if not isinstance(data, Mapping):
        return None
    ms = data.get("inputToFrameMs")
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms):
        return None
    seconds = float(ms) / 1000.0
    return seconds if 0.0 <= seconds <= MAX_PLAUSIBLE_INPUT_TO_FRAME_S else None
