"""The agent's Pixel Streaming signalling server: one streamer, at most one player.

Streamer side (the renderer, on loopback `streamer_host:streamer_port`, any
path): the server sends `config` (with the renderer's ICE servers) and
`identify`; the streamer answers `endpointId`, and from then on it is ready.
Player side (`/signal` on the private IP): the agent has already checked the
stream token before upgrading; the player gets `config` (with the session's
ICE servers) and `playerCount`, asks `listStreamers`, `subscribe`s, and
offer/answer/iceCandidate are relayed between the two with `playerId` added
towards the streamer and removed towards the player, as Epic's signalling
server (EpicGamesExt/PixelStreamingInfrastructure `Signalling/src`) does.

Activity: the streamer's `streamfleetInput` (the renderer saw user input on
the data channel) and the player's optional `inputActivity` both reach
`on_input`; docs/pixel-streaming.md says why. Media: the streamer's
`streamfleetMedia` (its media watch) reaches `on_media`; `stalled` also closes
the player with 1011.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from regional_stack.signalling import closing
from regional_stack.signalling import messages as m

log = logging.getLogger("streamfleet.agent.signalling")


class SignallingHub:
    def __init__(
        self,
        *,
        streamer_options: Callable[[], dict[str, Any]],
        on_streamer_ready: Callable[[], None],
        on_streamer_gone: Callable[[], None],
        on_input: Callable[[int], None],
        on_stats: Callable[[m.Message], None] | None = None,
        on_media: Callable[[str], None] | None = None,
    ) -> None:
        self._streamer_options = streamer_options
        self._on_streamer_ready = on_streamer_ready
        self._on_streamer_gone = on_streamer_gone
        self._on_input = on_input
        self._on_stats = on_stats
        self._on_media = on_media
        # (sender, message type) -> messages received; read by the agent's metrics.
        self.message_counts: Counter[tuple[str, str]] = Counter()
        self.streamer: web.WebSocketResponse | None = None
        self.streamer_id: str | None = None
        self.player: web.WebSocketResponse | None = None
        self.player_id: str | None = None
        self.subscribed = False
        self.last_close: closing.Close | None = None
        self._ids = itertools.count(1)

    # -- streamer ------------------------------------------------------------
    async def streamer_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=m.MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        if self.streamer is not None and not self.streamer.closed:
            refused = closing.Close(closing.STREAMER_REFUSED, "a streamer is already connected")
            await ws.close(code=refused.code, message=refused.reason_bytes())
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
                    log.warning("streamer sent a message we do not handle: %s", exc)
                    continue
                self.message_counts["streamer", msg["type"]] += 1
                await self._from_streamer(ws, msg)
        finally:
            if self.streamer is ws:
                self.streamer, self.streamer_id = None, None
                if self.player is not None and not self.player.closed:
                    self._on_streamer_gone()
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
        elif kind == m.STREAMFLEET_INPUT:
            if self.player is not None:
                self._on_input(m.input_count(msg))
        elif kind == m.STREAMFLEET_MEDIA:
            if msg.get("playerId") == self.player_id and self.player is not None:
                await self._media(str(msg["state"]), str(msg.get("reason") or "media stalled"))
        elif kind == "disconnectPlayer":
            if msg.get("playerId") == self.player_id:
                reason = str(msg.get("reason") or "")
                # E.g. the stub's media watch ("media stalled: ..."): the player
                # reconnects and the reconnect window runs (docs/operations.md).
                log.warning("the streamer disconnected the player: %s", reason)
                await self.disconnect_player(closing.disconnected_by_streamer(reason))
        elif (
            kind in m.STREAMER_TO_PLAYER
            and msg.get("playerId") == self.player_id
            and self.player is not None
        ):
            await self.player.send_str(m.dump(m.to_player(msg)))
        # pong, layerPreference: nothing to do for a single-streamer server.

    async def _media(self, state: str, reason: str) -> None:
        """The renderer's media watch about the current player. Stalled: the lifecycle
        learns it first (the outage's reconnect window starts), then the player is
        closed with 1011 and the reason, which Epic's library reconnects after."""
        if self._on_media is not None:
            self._on_media(state)
        if state == "stalled":
            log.warning("media to the player stalled: %s", reason)
            await self.disconnect_player(closing.disconnected_by_streamer(reason))

    # -- player --------------------------------------------------------------
    def new_player_id(self) -> str:
        return f"player-{next(self._ids)}"

    async def player_session(
        self, ws: web.WebSocketResponse, player_id: str, options: dict[str, Any]
    ) -> None:
        """Run one accepted player's signalling until it closes.

        `options` is the player's `peerConnectionOptions`: the session's ICE
        servers and transport policy, so an unmodified frontend connects
        through TURN with nothing of its own to configure.
        """
        self.player, self.player_id, self.subscribed = ws, player_id, False
        try:
            await ws.send_str(m.dump(m.config(options)))
            await ws.send_str(m.dump(m.player_count(1)))
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                try:
                    msg = m.parse(frame.data, m.PLAYER_TYPES)
                except m.ProtocolError as exc:
                    log.info("player sent a message we do not handle: %s", exc)
                    continue
                self.message_counts["player", msg["type"]] += 1
                await self._from_player(ws, player_id, msg)
        finally:
            if self.player is ws:
                await self._player_gone(player_id)

    def _ready_streamer(self) -> web.WebSocketResponse | None:
        if self.streamer_id is None or self.streamer is None or self.streamer.closed:
            return None
        return self.streamer

    async def _from_player(self, ws: web.WebSocketResponse, player_id: str, msg: m.Message) -> None:
        kind = msg["type"]
        if kind == "listStreamers":
            ids = (
                [self.streamer_id]
                if self._ready_streamer() is not None and self.streamer_id
                else []
            )
            await ws.send_str(m.dump(m.streamer_list(ids)))
        elif kind == "subscribe":
            await self._subscribe(ws, player_id, str(msg.get("streamerId") or ""))
        elif kind == "unsubscribe":
            await self._unsubscribe(player_id)
        elif kind == "ping":
            await ws.send_str(m.dump(m.pong(msg.get("time"))))
        elif kind == "inputActivity":
            self._on_input(1)
        elif kind == "stats" and self._on_stats is not None:
            self._on_stats(msg)
        elif kind in m.PLAYER_TO_STREAMER:
            streamer = self._ready_streamer()
            if streamer is None:
                log.info("player sent %s with no streamer to take it", kind)
                return
            if not self.subscribed:
                # Epic's server subscribes such a player to its first streamer.
                await self._subscribe(ws, player_id, self.streamer_id or "")
            await streamer.send_str(m.dump(m.to_streamer(msg, player_id)))
        # pong, stats: accepted, nothing to do.

    async def _subscribe(self, ws: web.WebSocketResponse, player_id: str, streamer_id: str) -> None:
        streamer = self._ready_streamer()
        if streamer is None or streamer_id != self.streamer_id:
            await ws.send_str(m.dump(m.subscribe_failed(f"Streamer {streamer_id} does not exist.")))
            return
        if self.subscribed:
            await self._unsubscribe(player_id)
        self.subscribed = True
        await streamer.send_str(m.dump(m.player_connected(player_id)))

    async def _unsubscribe(self, player_id: str) -> None:
        if not self.subscribed:
            return
        self.subscribed = False
        if self.streamer is not None and not self.streamer.closed:
            await self.streamer.send_str(m.dump(m.player_disconnected(player_id)))

    async def _player_gone(self, player_id: str) -> None:
        await self._unsubscribe(player_id)
        self.player, self.player_id, self.subscribed = None, None, False

    async def disconnect_player(self, close: closing.Close) -> None:
        ws, player_id = self.player, self.player_id
        if ws is None or player_id is None:
            return
        self.last_close = close
        await self._player_gone(player_id)
        await ws.close(code=close.code, message=close.reason_bytes())

    async def close(self) -> None:
        for ws in (self.player, self.streamer):
            if ws is not None and not ws.closed:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"agent stopping")
