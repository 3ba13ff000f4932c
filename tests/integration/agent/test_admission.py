"""Every signalling connection is checked before any media: token, instance, epoch, one player."""

from __future__ import annotations

import aiohttp
import pytest

from simulators.player import Player, SignallingRefused
from tests.integration.agent.conftest import AgentFactory, ControlPlaneFactory


async def _refusal(url: str, token: str) -> tuple[int, dict[str, str]]:
    """What the agent says to a plain GET with this token (it checks before upgrading)."""
    headers = {"X-Stream-Token": token} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, await resp.json()


async def _refused(player: Player) -> SignallingRefused:
    with pytest.raises(SignallingRefused) as info:
        await player.connect()
    await player.close()
    assert player.frames == 0
    return info.value


async def test_bad_tokens_are_refused_before_media(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp)
    session = await cp.create_session("client-adm")
    sid = session["session_id"]
    good = session["stream"]["token"]
    await cp.wait_serving(agent.instance_id, sid)
    epoch = agent.epoch_of(good)
    head, kid, payload, sig = good.split(".")
    forged = ".".join((head, kid, payload, ("A" if sig[0] != "A" else "B") + sig[1:]))
    http_url = agent.signal_url.replace("ws:", "http:")
    cases = {
        "wrong signature": (forged, 401, "bad_signature"),
        "expired": (agent.token(sid, epoch, ttl_s=-5), 401, "expired"),
        "other instance": (agent.token(sid, epoch, instance_id="i-someoneelse"), 403, "another"),
        "other private ip": (agent.token(sid, epoch, private_ip="127.44.250.250"), 403, "another"),
        "future epoch": (agent.token(sid, epoch + 5), 403, "epoch"),
        "no token": ("", 401, "missing_token"),
    }
    for name, (token, status, words) in cases.items():
        refused = await _refused(agent.player(session, token=token))
        assert refused.status == status, name
        http_status, body = await _refusal(http_url, token)
        assert http_status == status, name
        assert words in body["error"] + " " + body["detail"], (name, body)
    view = await cp.get_session(session)
    assert view["state"] == "assigned"  # nobody connected

    # Stale epoch: the session ends, the instance is assigned again (epoch + 1);
    # the first session's token, not yet expired, must not reach the GPU.
    await cp.delete_session(session)
    await cp.wait_instance(agent.instance_id, "ready")
    second = await cp.create_session("client-adm-2")
    await cp.wait_serving(agent.instance_id, second["session_id"])
    refused = await _refused(agent.player(session))
    assert refused.status == 403
    _, body = await _refusal(http_url, good)
    assert "epoch" in body["detail"]
    # The current token still works.
    player = agent.player(second)
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
    finally:
        await player.close()


async def test_second_player_is_refused(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp)
    session = await cp.create_session("client-two")
    first = agent.player(session)
    await first.connect()
    try:
        await first.wait_first_frame(within_s=15)
        refused = await _refused(agent.player(session))
        assert refused.status == 409
        # The first player is unaffected.
        seq = await first.send_input({"type": "toggle_frunk"})
        await first.wait_for_seq(seq, within_s=5)
    finally:
        await first.close()
