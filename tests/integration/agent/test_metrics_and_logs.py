"""The running agent serves its metrics on private_ip:metrics_port and logs one
session's story as JSON lines carrying the session id (the correlation id)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from streamfleet.localproc import free_port
from tests.integration.agent.conftest import AgentFactory, AgentProcess, ControlPlaneFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


async def wait_scrape(
    url: str, wanted: dict[tuple[str, tuple[tuple[str, str], ...]], float]
) -> Samples:
    """Scrape until every wanted sample has its value (events land asynchronously)."""
    got: Samples = {}
    try:
        async with asyncio.timeout(15):
            while True:
                got = await scrape(url)
                if all(got.get(k) == v for k, v in wanted.items()):
                    return got
                await asyncio.sleep(0.1)
    except TimeoutError:
        diff = {k: (got.get(k), v) for k, v in wanted.items() if got.get(k) != v}
        raise AssertionError(f"metrics not as wanted (got, wanted): {diff}") from None


def log_lines(agent: AgentProcess) -> list[dict[str, Any]]:
    text = agent.process.log_path.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_metrics_count_a_session_and_its_log_lines_carry_the_session_id(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    metrics_port = free_port()
    agent = await start_agent(cp, metrics_port=metrics_port)
    url = f"http://{agent.private_ip}:{metrics_port}/metrics"
    got = await scrape(url)
    assert got["streamfleet_agent_registered", ()] == 1
    assert got["streamfleet_agent_renderer_up", ()] == 1
    assert got["streamfleet_agent_instance_state", (("state", "ready"),)] == 1

    http_url = agent.signal_url.replace("ws:", "http:")
    async with aiohttp.ClientSession() as http, http.get(http_url) as resp:
        assert resp.status == 401  # no token: refused and counted
    session = await cp.create_session("client-metrics")
    sid = session["session_id"]
    await cp.wait_serving(agent.instance_id, sid)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            agent.signal_url, headers={"X-Stream-Token": session["stream"]["token"]}
        ) as ws,
    ):
        first = json.loads((await ws.receive(timeout=10)).data)
        assert first["type"] == "config"
        await ws.send_str(json.dumps({"type": "stats", "data": {"inputToFrameMs": 42}}))
        await ws.send_str(json.dumps({"type": "stats", "data": {"inputToFrameMs": "fast"}}))
        # Epic's protocol form, as the configurator page sends it: `data` a JSON string.
        await ws.send_str(json.dumps({"type": "stats", "data": '{"inputToFrameMs": 8}'}))
        await ws.send_str(json.dumps({"type": "listStreamers"}))
        while json.loads((await ws.receive(timeout=10)).data)["type"] != "streamerList":
            pass  # the hub handles a player's messages in order: the stats are in
    await cp.delete_session(session)
    await cp.wait_instance(agent.instance_id, "ready")

    got = await wait_scrape(
        url,
        {
            ("streamfleet_agent_player_connections_total", (("outcome", "missing_token"),)): 1,
            ("streamfleet_agent_player_connections_total", (("outcome", "accepted"),)): 1,
            ("streamfleet_agent_session_events_total", (("event", "client_connected"),)): 1,
            ("streamfleet_agent_session_events_total", (("event", "client_disconnected"),)): 1,
            ("streamfleet_agent_sessions_ended_total", (("reason", "ended_by_control_plane"),)): 1,
            ("streamfleet_agent_sessions_ended_total", (("reason", "idle"),)): 0,
            ("streamfleet_agent_input_to_frame_seconds_count", ()): 2,
            ("streamfleet_agent_renderer_restarts_total", ()): 1,  # the reset after the session
            ("streamfleet_agent_instance_state", (("state", "ready"),)): 1,
        },
    )
    assert got["streamfleet_agent_input_to_frame_seconds_sum", ()] == 0.05
    offers = (("sender", "player"), ("type", "stats"))
    assert got["streamfleet_agent_signalling_messages_total", offers] == 3

    story = [e["message"] for e in log_lines(agent) if e.get("session_id") == sid]
    assert story.count("session assigned") == 1
    assert story.count("session event client_connected") == 1
    assert story.count("session event client_disconnected") == 1
    assert story.count("session ended by the control plane") == 1
    refusals = [e for e in log_lines(agent) if e["message"].startswith("player refused")]
    assert [(e["message"], e["status"]) for e in refusals] == [
        ("player refused: missing_token", 401)
    ]
