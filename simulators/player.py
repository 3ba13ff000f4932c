"""An aiortc Pixel Streaming *player*: what tests and the benchmark use as the browser.

Test and simulation code, not part of the agent. It follows the same steps as
Epic's frontend library: open the signalling WebSocket, take its ICE servers
from the `config` message (unless given some), `listStreamers`, `subscribe`,
answer the streamer's offer, then receive video and send input as
UIInteraction messages on the `datachannel`. It decodes the input-sequence
marker of every frame, so callers can wait for "the first frame that reflects
input N" and measure input-to-frame latency.

Relay-only is the default: a player that gathers no TURN relay candidate
fails at once with `NoRelayCandidate` instead of waiting for ICE to time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from regional_stack.renderer import input_protocol, marker
from regional_stack.signalling import closing
from regional_stack.signalling import messages as m

log = logging.getLogger("streamfleet.player")
ACTIVITY_INTERVAL_S = 1.0


class PlayerError(RuntimeError):
    """The stream could not be set up or was ended; the message says why."""


class SignallingRefused(PlayerError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"signalling refused with HTTP {status}: {body}")
        self.status = status
        self.body = body


class NoRelayCandidate(PlayerError):
    """TURN gave no relay address: almost always a credential (secret) mismatch."""


class StreamEnded(PlayerError):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"stream ended by the server (close code {code}): {reason}")
        self.code = code
        self.reason = reason

    @property
    def final(self) -> bool:
        """The server ended the session: Epic's library would not reconnect."""
        return self.code == closing.SESSION_ENDED

    @property
    def replaced(self) -> bool:
        """The renderer died under the session: its stream is over, the session is
        not; the control plane re-places it (the session API shows the new stream)."""
        return self.code == closing.STREAMER_DISCONNECTED_PLAYER and self.reason == (
            closing.SESSION_REPLACED
        )

    @property
    def end_reason(self) -> str | None:
        return closing.ended_reason(self.reason) if self.final else None


class SubscribeFailed(PlayerError):
    """The server answered `subscribe` with `subscribeFailed`."""


@dataclass
class FrameInfo:
    received: float  # time.monotonic()
    seq: int | None
    image: np.ndarray


@dataclass
class Player:
    signalling_url: str
    token: str | None
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    relay_only: bool = True
    # Send the page-side `inputActivity` with input, as streamfleet's page may;
    # False behaves like Epic's unmodified library, which never sends it.
    report_activity: bool = True
    # Re-subscribe (a fresh offer from the streamer, so fresh ICE through
    # whatever TURN now works) when no frame arrived for this long after the
    # first one. None: never, as Epic's library, which only reconnects when
    # its signalling socket closes (the renderer's media watch closes it).
    media_stall_s: float | None = None

    def __post_init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pc: RTCPeerConnection | None = None
        self._channel: RTCDataChannel | None = None
        self._channel_open = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._frame_cond = asyncio.Condition()
        self._failure: PlayerError | None = None
        self.frames = 0
        self.last: FrameInfo | None = None
        self.first_frame_at: float | None = None
        self.seq = 0
        self._last_activity = 0.0
        self.closed_code: int | None = None
        self.closed_reason = ""
        self.config: dict[str, Any] | None = None
        self.streamer_id: str | None = None
        self.resubscribes = 0

    # -- connection --------------------------------------------------------------
    async def connect(self) -> None:
        """Open signalling; media set-up continues in the background (see wait_first_frame)."""
        self._http = aiohttp.ClientSession()
        headers = {"X-Stream-Token": self.token} if self.token else {}
        try:
            self._ws = await self._http.ws_connect(
                self.signalling_url, headers=headers, heartbeat=10.0
            )
        except aiohttp.WSServerHandshakeError as exc:
            await self._http.close()
            raise SignallingRefused(exc.status, exc.message) from exc
        self._tasks.append(asyncio.create_task(self._signalling()))
        if self.media_stall_s is not None:
            self._tasks.append(asyncio.create_task(self._watch_media(self.media_stall_s)))

    async def _send(self, msg: m.Message) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_str(m.dump(msg))

    async def _signalling(self) -> None:
        assert self._ws is not None
        ws = self._ws
        try:
            while True:
                frame = await ws.receive()
                if frame.type is aiohttp.WSMsgType.CLOSE:
                    self.closed_code, self.closed_reason = frame.data, str(frame.extra or "")
                    break
                if frame.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    self.closed_code = ws.close_code
                    break
                if frame.type is aiohttp.WSMsgType.TEXT:
                    await self._on_message(json.loads(frame.data))
        except PlayerError as exc:
            await self._fail(exc)
            return
        await self._fail(StreamEnded(self.closed_code, self.closed_reason or "signalling closed"))

    async def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "config":
            self.config = msg
            await self._send({"type": "listStreamers"})
        elif kind == "streamerList":
            if msg.get("ids"):
                self.streamer_id = str(msg["ids"][0])
                await self._send({"type": "subscribe", "streamerId": self.streamer_id})
            else:
                # The renderer is (re)starting: ask again shortly.
                await asyncio.sleep(0.1)
                await self._send({"type": "listStreamers"})
        elif kind == "offer":
            await self._answer(str(msg["sdp"]))
        elif kind == "subscribeFailed":
            raise SubscribeFailed(str(msg.get("message", "")))
        elif kind == "ping":
            await self._send({"type": "pong", "time": msg.get("time")})

    async def _watch_media(self, stall_s: float) -> None:
        """Frames stopped for `stall_s` after the first: subscribe again. The
        agent relays it as `playerDisconnected` + `playerConnected`, and the
        streamer answers with a fresh offer (docs/pixel-streaming.md)."""
        asked_at = 0.0
        while self._failure is None:
            await asyncio.sleep(min(0.5, stall_s / 4))
            now = time.monotonic()
            last = self.last.received if self.last is not None else None
            if last is None or self.streamer_id is None:
                continue
            if now - max(last, asked_at) >= stall_s:
                log.info("no frame for %.1f s: subscribing again", now - last)
                asked_at = now
                self.resubscribes += 1
                await self._send({"type": "subscribe", "streamerId": self.streamer_id})

    async def _answer(self, sdp: str) -> None:
        if self._pc is not None:
            # In the background: a close waits for TURN to delete the old
            # allocations (long with the TURN server gone); the new offer must not.
            old = self._pc
            self._tasks.append(asyncio.create_task(old.close()))
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self._ice_servers()
        ]
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        self._pc = pc
        self._channel_open.clear()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._tasks.append(asyncio.create_task(self._read_video(track)))

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self._channel = channel
            self._channel_open.set()

        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        local = pc.localDescription.sdp
        if self.relay_only and " typ relay" not in local:
            urls = [u for s in self._ice_servers() for u in _as_list(s.get("urls"))]
            raise NoRelayCandidate(
                f"no relay candidate gathered from {urls or 'no TURN server'}: the TURN server "
                "refused the credentials (TURN secret mismatch?) or is unreachable"
            )
        await self._send({"type": "answer", "sdp": local})

    def _ice_servers(self) -> list[dict[str, Any]]:
        """The ones given, else the `config` message's, as Epic's library takes them."""
        if self.ice_servers:
            return self.ice_servers
        options = (self.config or {}).get("peerConnectionOptions") or {}
        servers = options.get("iceServers") or []
        return [s for s in servers if isinstance(s, dict)]

    async def _read_video(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, VideoFrame):
                continue
            image = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            info = FrameInfo(time.monotonic(), marker.decode(image), image)
            async with self._frame_cond:
                self.frames += 1
                self.last = info
                if self.first_frame_at is None:
                    self.first_frame_at = info.received
                self._frame_cond.notify_all()

    async def _fail(self, exc: PlayerError) -> None:
        if self._failure is None:
            self._failure = exc
        async with self._frame_cond:
            self._frame_cond.notify_all()
        self._channel_open.set()

    # -- waiting -----------------------------------------------------------------
    async def wait_frame(self, predicate: Any, within_s: float) -> FrameInfo:
        """The first frame (from now on, or the latest) for which `predicate(info)` holds."""
        async with asyncio.timeout(within_s), self._frame_cond:
            while True:
                if self.last is not None and predicate(self.last):
                    return self.last
                if self._failure is not None:
                    raise self._failure
                await self._frame_cond.wait()

    async def wait_first_frame(self, within_s: float = 10.0) -> FrameInfo:
        return await self.wait_frame(lambda _: True, within_s)

    async def wait_for_seq(self, seq: int, within_s: float = 5.0) -> FrameInfo:
        return await self.wait_frame(
            lambda f: f.seq is not None and f.seq == seq & 0xFFFF, within_s
        )

    async def wait_closed(self, within_s: float) -> PlayerError:
        """Wait until the server ends the stream; return why."""
        async with asyncio.timeout(within_s), self._frame_cond:
            while self._failure is None:
                await self._frame_cond.wait()
        return self._failure

    @property
    def failure(self) -> PlayerError | None:
        return self._failure

    # -- input ---------------------------------------------------------------------
    async def send_input(self, descriptor: dict[str, Any], within_s: float = 10.0) -> int:
        """Send one input with the next sequence number; return that number."""
        async with asyncio.timeout(within_s):
            await self._channel_open.wait()
        if self._failure is not None:
            raise self._failure
        if self._channel is None or self._channel.readyState != "open":
            raise PlayerError("data channel is not open")
        self.seq = self.seq % 0xFFFF + 1
        self._channel.send(input_protocol.encode_ui_interaction({**descriptor, "seq": self.seq}))
        now = time.monotonic()
        if self.report_activity and now - self._last_activity >= ACTIVITY_INTERVAL_S:
            self._last_activity = now
            await self._send({"type": "inputActivity"})
        return self.seq

    async def send_raw(self, data: bytes, within_s: float = 10.0) -> None:
        """Send one data-channel message as it is (e.g. Epic's MouseMove bytes)."""
        async with asyncio.timeout(within_s):
            await self._channel_open.wait()
        if self._failure is not None:
            raise self._failure
        if self._channel is None or self._channel.readyState != "open":
            raise PlayerError("data channel is not open")
        self._channel.send(data)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pc is not None:
            await self._pc.close()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()


def _as_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []
