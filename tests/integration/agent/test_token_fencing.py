"""Router + agent + a counting renderer: a token that must not stream never
reaches the renderer. The real nginx router (its template, its Lua) sits in
front of two real agents sharing one port on their own addresses, as in a
region; each agent's renderer is a canary that counts the players it is given.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from nginx_lua.process import start_nginx, stop_nginx
from nginx_lua.render import RouterSettings, render_router
from streamfleet.localproc import free_port
from tests.integration.agent.conftest import (
    AGENT_CIDR,
    REGION,
    TOKEN_KEYS,
    AgentFactory,
    AgentProcess,
    ControlPlaneFactory,
)

CANARY = Path(__file__).with_name("canary_renderer.py")


def canary_command(count_file: Path) -> str:
    return f"{sys.executable} {CANARY} --signalling-url {{streamer_url}} --count-file {count_file}"


def reached(count_file: Path) -> int:
    return len(count_file.read_text().splitlines()) if count_file.exists() else 0


@pytest.fixture
def router_for_agents() -> Iterator[tuple[int, str]]:
    """(agent port, router base URL): the router forwards /i/{ip}/ to ip:agent port."""
    prefix_root = Path(tempfile.mkdtemp(prefix="streamfleet-fencing-"))
    prefix_root.chmod(0o755)
    key_file = prefix_root / "keys.json"
    key_file.write_text(json.dumps(TOKEN_KEYS))
    agent_port, port = free_port(), free_port()
    settings = RouterSettings(
        region=REGION, listen=f"127.0.0.1:{port}", region_cidr=AGENT_CIDR,
        agent_port=agent_port, key_file=key_file, worker_processes="1",
    )  # fmt: skip
    prefix = prefix_root / "prefix"
    conf = render_router(prefix, settings)
    proc = start_nginx(prefix, conf, ready_url=f"http://127.0.0.1:{port}/healthz", name="router")
    try:
        yield agent_port, f"ws://127.0.0.1:{port}"
    finally:
        stop_nginx(proc)


async def attempt(router: str, ip: str, token: str, *, subscribe: bool = True) -> int:
    """A player through the router: the HTTP status of the upgrade (101 = let in).
    Let in, it subscribes, which is what makes the agent hand it to the renderer."""
    url = f"{router}/i/{ip}/signal?token={token}"
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url) as ws:
                if subscribe:
                    await ws.send_str(json.dumps({"type": "listStreamers"}))
                    await ws.send_str(json.dumps({"type": "subscribe", "streamerId": "canary"}))
                    await asyncio.sleep(0.3)  # bounded: long enough for playerConnected
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def wait_reached(count_file: Path, n: int, within_s: float = 10) -> None:
    async with asyncio.timeout(within_s):
        while reached(count_file) < n:
            await asyncio.sleep(0.05)


async def test_ended_stale_and_foreign_tokens_never_reach_the_renderer(
    start_control_plane: ControlPlaneFactory,
    start_agent: AgentFactory,
    router_for_agents: tuple[int, str],
    tmp_path: Path,
) -> None:
    agent_port, router = router_for_agents
    cp = await start_control_plane(reconnect_window_s=30.0)
    counts = [tmp_path / "a.count", tmp_path / "b.count"]
    agents: list[AgentProcess] = [
        await start_agent(
            cp, port=agent_port, renderer_command=canary_command(c), heartbeat_interval_s=1.0
        )
        for c in counts
    ]
    first = await cp.create_session("fencing-1")
    token = first["stream"]["token"]
    serving = next(a for a in agents if first["stream"]["signaling_url"].endswith(
        f"/i/{a.private_ip}/signal"))  # fmt: skip
    other = next(a for a in agents if a is not serving)
    count, other_count = counts[agents.index(serving)], counts[agents.index(other)]
    await cp.wait_serving(serving.instance_id, first["session_id"])

    # Positive control: the right token reaches the renderer, once.
    assert await attempt(router, serving.private_ip, token) == 101
    await wait_reached(count, 1)

    # A token of another instance: its path names the other instance (the router
    # refuses), or its claims name another instance id on this address (the agent does).
    assert await attempt(router, other.private_ip, token) in (401, 403)
    forged = serving.token(first["session_id"], serving.epoch_of(token),
                           instance_id=other.instance_id)  # fmt: skip
    assert await attempt(router, serving.private_ip, forged) == 403
    foreign = other.token(first["session_id"], serving.epoch_of(token))
    assert await attempt(router, other.private_ip, foreign) == 403

    # The session ends; its token, unexpired, is refused at once (no heartbeat waited for).
    await cp.delete_session(first)
    assert await attempt(router, serving.private_ip, token) == 403

    # The instance serves a new session at a higher epoch: the old token is a stale epoch.
    await cp.wait_instance(serving.instance_id, "ready")
    await cp.wait_instance(other.instance_id, "ready")
    # Sessions until the first instance serves one again (the other may take the first).
    second = await cp.create_session("fencing-2")
    if not second["stream"]["signaling_url"].endswith(f"/i/{serving.private_ip}/signal"):
        second = await cp.create_session("fencing-3")
    holder = next(a for a in agents if second["stream"]["signaling_url"].endswith(
        f"/i/{a.private_ip}/signal"))  # fmt: skip
    await cp.wait_serving(holder.instance_id, second["session_id"])
    assert await attempt(router, serving.private_ip, token) == 403
    assert holder is serving and holder.epoch_of(second["stream"]["token"]) > serving.epoch_of(
        token
    )
    stale = holder.token(second["session_id"], holder.epoch_of(second["stream"]["token"]) - 1)
    assert await attempt(router, holder.private_ip, stale) == 403

    # Nothing refused reached a renderer: the first player, and no one else.
    assert (reached(count), reached(other_count)) == (1, 0)
    # The agents' unauthenticated /healthz names no session.
    for agent in agents:
        health = await agent.health()
        assert not {"session_id", "epoch"} & set(health)
        assert first["session_id"] not in json.dumps(health)
