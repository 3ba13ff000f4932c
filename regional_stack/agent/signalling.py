"""The agent's Pixel Streaming signalling server: one streamer, at most one player.

Streamer side (the renderer, on loopback `streamer_host:streamer_port`, any
path): the server sends `config` (with the renderer's ICE servers) and
`identify`; the streamer answers `endpointId`, and from then on it is ready.
Player side (`/signal` on the private IP): the agent has already checked the
stream token before upgrading; the player gets `config` and `playerCount`,
asks `listStreamers`, `subscribe`s, and offer/answer/iceCandidate are relayed
between the two with `playerId` added towards the streamer and removed
towards the player, as Epic's signalling server does.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from regional_stack.signaling import messages as m

log = logging.getLogger("streamfleet.agent.signalling")

CLOSE_SESSION_ENDED = 4000
CLOSE_STREAMER_REFUSED = 4001


class SignallingHub:
    def __init__(
        self,
        *,
        streamer_options: Callable[[], dict[str, Any]],
        on_streamer_ready: Callable[[], None],
        on_input_activity: Callable[[], None],
        on_stats: Callable[[m.Message], None] | None = None,
    ) -> None:
        self._streamer_options = streamer_options
        self._on_streamer_ready = on_streamer_ready
        self._on_input = on_input_activity
        self._on_stats = on_stats
        # (sender, message type) -> messages received; read by the agent's metrics.
        self.message_counts: Counter[tuple[str, str]] = Counter()
        self.streamer: web.WebSocketResponse | None = None
        self.streamer_id: str | None = None
        self.player: web.WebSocketResponse | None = None
        self.player_id: str | None = None
        self.subscribed = False
        self._ids = itertools.count(1)

    # -- streamer ------------------------------------------------------------
    async def streamer_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=m.MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        if self.streamer is not None and not self.streamer.closed:
            await ws.close(code=CLOSE_STREAMER_REFUSED, message=b"a streamer is already connected")
            return ws
        self.streamer, self.streamer_id = ws, None
        await ws.send_str(m.dump(m.config(self._streamer_options())))
        await ws.send_str(m.dump(m.identify()))
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                try:
                    msg = m.parse(frame.data, m.STREAMER_TYPES)
                except m.ProtocolError as exc:
                    log.warning("streamer sent a bad message: %s", exc)
                    continue
                self.message_counts["streamer", msg["type"]] += 1
                await self._from_streamer(ws, msg)
        finally:
            if self.streamer is ws:
                self.streamer, self.streamer_id = None, None
                if self.player is not None and not self.player.closed:
                    await self.player.send_str(m.dump(m.streamer_disconnected()))
        return ws

    async def _from_streamer(self, ws: web.WebSocketResponse, msg: m.Message) -> None:
        kind = msg["type"]
        if kind == "endpointId":
            self.streamer_id = str(msg.get("id") or "DefaultStreamer")
            await ws.send_str(m.dump(m.endpoint_id_confirm(self.streamer_id)))
            self._on_streamer_ready()
            if self.subscribed and self.player_id is not None:
                await ws.send_str(m.dump(m.player_connected(self.player_id)))
        elif kind == "ping":
            await ws.send_str(m.dump(m.pong(msg.get("time"))))
        elif kind == "disconnectPlayer":
            if msg.get("playerId") == self.player_id:
                await self.disconnect_player(str(msg.get("reason") or "disconnected by streamer"))
        elif (
            kind in ("offer", "answer", "iceCandidate")
            and msg.get("playerId") == self.player_id
            and self.player is not None
        ):
            await self.player.send_str(m.dump(m.to_player(msg)))

    # -- player --------------------------------------------------------------
    def new_player_id(self) -> str:
        return f"player-{next(self._ids)}"

    async def player_session(self, ws: web.WebSocketResponse, player_id: str) -> None:
        """Run one accepted player's signalling until it closes."""
        self.player, self.player_id, self.subscribed = ws, player_id, False
        try:
            await ws.send_str(m.dump(m.config({})))
            await ws.send_str(m.dump(m.player_count(1)))
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                try:
                    msg = m.parse(frame.data, m.PLAYER_TYPES)
                except m.ProtocolError as exc:
                    log.info("player sent a bad message: %s", exc)
                    continue
                self.message_counts["player", msg["type"]] += 1
                await self._from_player(ws, player_id, msg)
        finally:
            if self.player is ws:
                await self._player_gone(player_id)

    async def _from_player(self, ws: web.WebSocketResponse, player_id: str, msg: m.Message) -> None:
        kind = msg["type"]
        streamer = self.streamer if self.streamer_id is not None else None
        if kind == "listStreamers":
            ids = [self.streamer_id] if self.streamer_id else []
            await ws.send_str(m.dump(m.streamer_list(ids)))
        elif kind == "subscribe":
            self.subscribed = True
            if streamer is not None:
                await streamer.send_str(m.dump(m.player_connected(player_id)))
        elif kind == "unsubscribe":
            self.subscribed = False
            if streamer is not None:
                await streamer.send_str(m.dump(m.player_disconnected(player_id)))
        elif kind == "ping":
            await ws.send_str(m.dump(m.pong(msg.get("time"))))
        elif kind == "inputActivity":
            self._on_input()
        elif kind == "stats" and self._on_stats is not None:
            self._on_stats(msg)
        elif kind in ("offer", "answer", "iceCandidate") and streamer is not None:
            await streamer.send_str(m.dump(m.to_streamer(msg, player_id)))

    async def _player_gone(self, player_id: str) -> None:
        was_subscribed = self.subscribed
        self.player, self.player_id, self.subscribed = None, None, False
        if was_subscribed and self.streamer is not None and not self.streamer.closed:
            await self.streamer.send_str(m.dump(m.player_disconnected(player_id)))

    async def disconnect_player(self, reason: str) -> None:
        ws, player_id = self.player, self.player_id
        if ws is None or player_id is None:
            return
        await self._player_gone(player_id)
        await ws.close(code=CLOSE_SESSION_ENDED, message=reason.encode()[:120])

    async def close(self) -> None:
        for ws in (self.player, self.streamer):
            if ws is not None and not ws.closed:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"agent stopping")
