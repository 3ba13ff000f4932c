"""Every signalling connection is checked before any media: token, instance, epoch, one player."""

from __future__ import annotations

import aiohttp
import pytest

from regional_stack.signaling.player import Player, SignallingRefused
from tests.integration.agent.conftest import AgentFactory, Coturn, StandInControlPlane


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
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url)
    epoch = stand_in.assign("sess-adm")
    ice = coturn.ice_servers("sess-adm")
    good = agent.token("sess-adm", epoch)
    head, kid, payload, sig = good.split(".")
    forged = ".".join((head, kid, payload, ("A" if sig[0] != "A" else "B") + sig[1:]))
    cases = {
        "wrong signature": (forged, 401, "bad_signature"),
        "expired": (agent.token("sess-adm", epoch, ttl_s=-5), 401, "expired"),
        "other instance": (
            agent.token("sess-adm", epoch, instance_id="i-someoneelse"),
            403,
            "another instance",
        ),
        "other private ip": (
            agent.token("sess-adm", epoch, private_ip="127.44.250.250"),
            403,
            "another instance",
        ),
        "no token": ("", 401, "missing_token"),
    }
    for name, (token, status, words) in cases.items():
        refused = await _refused(Player(agent.signal_url, token or None, ice_servers=ice))
        assert refused.status == status, name
        http_status, body = await _refusal(agent.signal_url.replace("ws:", "http:"), token)
        assert http_status == status, name
        assert words in body["error"] + " " + body["detail"], (name, body)
    # Stale epoch: a newer assignment replaced the one the token was signed for.
    new_epoch = stand_in.assign("sess-adm-2")
    assert new_epoch == epoch + 1
    await agent.wait_health(lambda h: h["epoch"] == new_epoch)
    stale = agent.token("sess-adm", epoch)
    refused = await _refused(Player(agent.signal_url, stale, ice_servers=ice))
    assert refused.status == 403
    _, body = await _refusal(agent.signal_url.replace("ws:", "http:"), stale)
    assert "epoch" in body["detail"]
    # A future epoch the control plane never issued: the agent asks, then refuses.
    refused = await _refused(
        Player(agent.signal_url, agent.token("sess-adm-2", new_epoch + 5), ice_servers=ice)
    )
    assert refused.status == 403
    assert not [e for e in stand_in.events if e["type"] == "client_connected"]


async def test_second_player_is_refused(
    coturn: Coturn, stand_in: StandInControlPlane, start_agent: AgentFactory
) -> None:
    agent = await start_agent(stand_in.url)
    epoch = stand_in.assign("sess-two")
    token = agent.token("sess-two", epoch)
    first = Player(agent.signal_url, token, ice_servers=coturn.ice_servers("sess-two"))
    await first.connect()
    try:
        await first.wait_first_frame(within_s=15)
        second = Player(agent.signal_url, token, ice_servers=coturn.ice_servers("sess-two"))
        refused = await _refused(second)
        assert refused.status == 409
        # The first player is unaffected.
        seq = await first.send_input({"type": "toggle_frunk"})
        await first.wait_for_seq(seq, within_s=5)
    finally:
        await first.close()
