"""The agent's signalling hub speaks protocol 1.3.0 both ways, with Epic's recorded messages.

A real aiohttp server on loopback runs `SignallingHub`; a scripted streamer and
a scripted player (plain WebSocket clients) send the messages Epic's frontend
library and an Unreal streamer send (tests/vectors/pixel_streaming_1_3.json),
and the test checks what the other side receives, and the close codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from regional_stack.agent.signalling import SignallingHub
from regional_stack.signalling import closing
from streamfleet.localproc import free_port

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "pixel_streaming_1_3.json").read_text()
)
P2S, S2S = VECTORS["player_to_server"], VECTORS["streamer_to_server"]
TO_PLAYER, TO_STREAMER = VECTORS["server_to_player"], VECTORS["server_to_streamer"]
PLAYER_OPTIONS = TO_PLAYER["config"]["peerConnectionOptions"]
STREAMER_OPTIONS = TO_STREAMER["config"]["peerConnectionOptions"]


@dataclass
class Rig:
    hub: SignallingHub
    base: str
    http: aiohttp.ClientSession
    inputs: list[int] = field(default_factory=list)
    ready: int = 0
    gone: int = 0

    async def streamer(self) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.base + "/streamer")
        assert await recv(ws) == TO_STREAMER["config"]
        assert await recv(ws) == TO_STREAMER["identify"]
        await send(ws, S2S["endpointId"])
        assert await recv(ws) == TO_STREAMER["endpointIdConfirm"]
        return ws

    async def player(self) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.base + "/signal")
        assert await recv(ws) == TO_PLAYER["config"]
        assert await recv(ws) == TO_PLAYER["playerCount"]
        return ws


async def send(ws: aiohttp.ClientWebSocketResponse, msg: dict[str, Any]) -> None:
    await ws.send_str(json.dumps(msg))


async def recv(ws: aiohttp.ClientWebSocketResponse, within_s: float = 5.0) -> Any:
    frame = await ws.receive(timeout=within_s)
    assert frame.type is aiohttp.WSMsgType.TEXT, (frame.type, frame.data, frame.extra)
    return json.loads(frame.data)


async def closed(ws: aiohttp.ClientWebSocketResponse, within_s: float = 5.0) -> tuple[int, str]:
    frame = await ws.receive(timeout=within_s)
    assert frame.type is aiohttp.WSMsgType.CLOSE, (frame.type, frame.data)
    return int(frame.data), str(frame.extra)


async def until(check: Any, within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    holder: dict[str, Rig] = {}

    def rig_() -> Rig:
        return holder["rig"]

    hub = SignallingHub(
        streamer_options=lambda: dict(STREAMER_OPTIONS),
        on_streamer_ready=lambda: setattr(rig_(), "ready", rig_().ready + 1),
        on_streamer_gone=lambda: setattr(rig_(), "gone", rig_().gone + 1),
        on_input=lambda n: rig_().inputs.append(n),
    )

    async def player(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await hub.player_session(ws, "player-1", dict(PLAYER_OPTIONS))
        return ws

    app = web.Application()
    app.router.add_get("/signal", player)
    app.router.add_get("/streamer", hub.streamer_ws)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as http:
        holder["rig"] = Rig(hub, f"http://127.0.0.1:{port}", http)
        try:
            yield holder["rig"]
        finally:
            await hub.close()
            await runner.cleanup()


async def test_full_exchange_both_directions(rig: Rig) -> None:
    streamer = await rig.streamer()
    assert rig.ready == 1
    player = await rig.player()
    await send(player, P2S["listStreamers"])
    assert await recv(player) == TO_PLAYER["streamerList"]
    await send(player, P2S["subscribe"])
    assert await recv(streamer) == TO_STREAMER["playerConnected"]
    # Streamer -> player: offer and candidates lose the routing field.
    for kind in ("offer", "iceCandidate"):
        await send(streamer, S2S[kind])
        assert await recv(player) == TO_PLAYER[kind]
    # Player -> streamer: everything Epic's server forwards is tagged with the player.
    for kind in ("answer", "iceCandidate", "layerPreference", "dataChannelRequest",
                 "peerDataChannelsReady"):  # fmt: skip
        await send(player, P2S[kind])
        assert await recv(streamer) == TO_STREAMER[kind]
    # Accepted with no answer (stats, pong), then ping is answered with its time.
    for kind in ("stats", "pong", "ping"):
        await send(player, P2S[kind])
    assert await recv(player) == TO_PLAYER["pong"]
    await send(streamer, S2S["ping"])
    assert await recv(streamer) == TO_STREAMER["pong"]
    # Streamer's own messages that need no relay, then an answer (player-offer flow).
    await send(streamer, S2S["pong"])
    await send(streamer, S2S["layerPreference"])
    await send(streamer, S2S["answer"])
    assert await recv(player) == TO_PLAYER["answer"]
    await send(player, P2S["unsubscribe"])
    assert await recv(streamer) == TO_STREAMER["playerDisconnected"]


async def test_subscribe_to_an_unknown_streamer_fails(rig: Rig) -> None:
    streamer = await rig.streamer()
    player = await rig.player()
    await send(player, {"type": "subscribe", "streamerId": "NoSuchStreamer"})
    assert await recv(player) == TO_PLAYER["subscribeFailed"]
    # Nothing reached the streamer; a good subscribe still works afterwards.
    await send(player, P2S["subscribe"])
    assert await recv(streamer) == TO_STREAMER["playerConnected"]


async def test_without_a_streamer_the_list_is_empty_and_subscribe_fails(rig: Rig) -> None:
    player = await rig.player()
    await send(player, P2S["listStreamers"])
    assert await recv(player) == {"type": "streamerList", "ids": []}
    await send(player, P2S["subscribe"])
    assert (await recv(player))["type"] == "subscribeFailed"


async def test_activity_from_the_renderer_and_the_page(rig: Rig) -> None:
    streamer = await rig.streamer()
    await send(streamer, S2S["streamfleetInput"])  # no player yet: ignored
    player = await rig.player()
    await send(streamer, S2S["streamfleetInput"])
    await send(streamer, {"type": "streamfleetInput"})
    await send(player, P2S["inputActivity"])
    await until(lambda: len(rig.inputs) == 3)
    assert rig.inputs == [3, 1, 1]


async def test_bad_messages_are_ignored_not_fatal(rig: Rig) -> None:
    streamer = await rig.streamer()
    player = await rig.player()
    for case in VECTORS["invalid"]:
        await (player if case["from"] == "player" else streamer).send_str(case["text"])
    await send(player, P2S["ping"])
    assert await recv(player) == TO_PLAYER["pong"]
    await send(streamer, S2S["ping"])
    assert await recv(streamer) == TO_STREAMER["pong"]
    assert rig.inputs == []


async def test_streamer_disconnects_the_player_as_epics_server_does(rig: Rig) -> None:
    streamer = await rig.streamer()
    player = await rig.player()
    await send(player, P2S["subscribe"])
    assert await recv(streamer) == TO_STREAMER["playerConnected"]
    await send(streamer, S2S["disconnectPlayer"])
    assert await closed(player) == (1011, "no TURN relay candidate")
    assert await recv(streamer) == TO_STREAMER["playerDisconnected"]


async def test_a_session_the_server_ends_closes_final_with_its_reason(rig: Rig) -> None:
    await rig.streamer()
    player = await rig.player()
    await until(lambda: rig.hub.player is not None)
    await rig.hub.disconnect_player(closing.session_ended("idle"))
    assert await closed(player) == (1001, "session ended: idle")


async def test_streamer_gone_is_reported_and_a_second_streamer_refused(rig: Rig) -> None:
    streamer = await rig.streamer()
    second = await rig.http.ws_connect(rig.base + "/streamer")
    assert await closed(second) == (4001, "a streamer is already connected")
    await rig.player()
    await until(lambda: rig.hub.player is not None)
    await streamer.close()
    await until(lambda: rig.gone == 1)
    again = await rig.streamer()  # the slot is free again
    assert rig.ready == 2
    await again.close()
