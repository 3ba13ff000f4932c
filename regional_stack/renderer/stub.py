"""Renderer stub: a Pixel Streaming *streamer* built on aiortc, standing in for Unreal.

    python -m regional_stack.renderer.stub --signalling-url ws://127.0.0.1:8888/

It connects to the signalling server as Unreal's Pixel Streaming plugin does
(`-PixelStreamingURL=...`): takes `config` (ICE servers), answers `identify`
with `endpointId`, and for each `playerConnected` makes an offer with one
video track (the car scene) and a `datachannel` for input. On the data channel
it behaves like Unreal's `FStreamer` (epic_protocol.py): when the channel
opens it sends the two `Protocol` messages, `InitialSettings` and the
input/quality ownership flags; it answers `RequestInitialSettings`,
`RequestQualityControl`, `LatencyTest` and `TestEcho`; Epic's mouse, key,
touch and gamepad input and `UIInteraction` descriptors move the car
(controls.py); `Command` is a console command, never scene input. It tells the
agent that input arrived with `streamfleetInput` (activity.py), at most once a
second. Each frame carries the sequence number of the last descriptor it
reflects (renderer/marker.py). The scene persists across players, so a player
that reconnects finds the car as it left it; the agent restarts the process to
reset it between sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import logging
import signal
import sys
import time
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

from regional_stack.renderer import activity, controls, epic_protocol, media_watch, scene
from regional_stack.signalling import messages as m

log = logging.getLogger("streamfleet.renderer.stub")
VIDEO_CLOCK = 90_000
NO_RELAY = (
    "renderer gathered no TURN relay candidate: the TURN server refused its credentials "
    "(secret mismatch?) or is unreachable"
)


class Scene:
    """The live scene, shared by every track; inputs wake the tracks at once."""

    def __init__(self, state: scene.SceneState, width: int, height: int) -> None:
        self.state = state
        self.width, self.height = width, height
        self.changed = asyncio.Event()
        self.inputs = 0

    def apply(self, descriptor: dict[str, Any]) -> None:
        try:
            self.state = scene.apply_input(self.state, descriptor)
        except scene.InputRejected as exc:
            log.info("input rejected: %s", exc)
            return
        self.inputs += 1
        self.changed.set()


class CarTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, live: Scene, fps: int) -> None:
        super().__init__()
        self._live = live
        self._period = 1.0 / fps
        self._start: float | None = None
        self._next = 0.0

    async def recv(self) -> VideoFrame:
        now = time.monotonic()
        if self._start is None:
            self._start = self._next = now
        else:
            # Wait for the next frame slot, but send at once when an input
            # changed the scene: input-to-frame latency should not include
            # the rest of a frame period.
            wait = self._next - now
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._live.changed.wait(), wait)
            now = time.monotonic()
            self._next = max(self._next + self._period, now)
        self._live.changed.clear()
        image = scene.render(self._live.state, self._live.width, self._live.height)
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = int((now - self._start) * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


def rtc_configuration(options: dict[str, Any]) -> RTCConfiguration:
    servers = []
    for entry in options.get("iceServers") or []:
        urls = entry.get("urls")
        servers.append(
            RTCIceServer(
                urls=urls, username=entry.get("username"), credential=entry.get("credential")
            )
        )
    policy = (
        RTCIceTransportPolicy.RELAY
        if options.get("iceTransportPolicy") == "relay"
        else RTCIceTransportPolicy.ALL
    )
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


MEDIA_CHECK_S = 0.5  # how often each peer's receiver reports are looked at


class Streamer:
    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        live: Scene,
        fps: int,
        media_stall_s: float = media_watch.DEFAULT_STALL_S,
    ) -> None:
        self.ws = ws
        self.live = live
        self.fps = fps
        # 0 switches the media watch off (then a dead media path shows only as
        # ICE consent expiry, ~30 s, or never).
        self.media_stall_s = media_stall_s
        self.options: dict[str, Any] = {}
        self.peers: dict[str, RTCPeerConnection] = {}
        self.controls = controls.Controls()
        self.reports = activity.InputReports()
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, msg: m.Message) -> None:
        await self.ws.send_str(m.dump(msg))

    async def handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "config":
            self.options = msg.get("peerConnectionOptions") or {}
        elif kind == "identify":
            await self.send(
                {
                    "type": "endpointId",
                    "id": "streamfleet-stub",
                    "protocolVersion": m.PROTOCOL_VERSION,
                }
            )
        elif kind == "playerConnected":
            await self.offer(str(msg["playerId"]))
        elif kind == "playerDisconnected":
            pc = self.peers.pop(str(msg.get("playerId")), None)
            if pc is not None:
                # In the background: a close waits for TURN to delete its
                # allocations (~10 s when the TURN server is gone), and the
                # signalling messages behind this one must not wait for it.
                self._spawn(pc.close())
        elif kind == "answer":
            pc = self.peers.get(str(msg.get("playerId")))
            if pc is not None:
                await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
        elif kind == "iceCandidate":
            pc = self.peers.get(str(msg.get("playerId")))
            data = msg.get("candidate") or {}
            if pc is not None and data.get("candidate"):
                cand = candidate_from_sdp(str(data["candidate"]).removeprefix("candidate:"))
                cand.sdpMid = data.get("sdpMid")
                cand.sdpMLineIndex = data.get("sdpMLineIndex")
                await pc.addIceCandidate(cand)

    async def offer(self, player_id: str) -> None:
        old = self.peers.pop(player_id, None)
        if old is not None:
            self._spawn(old.close())  # in the background, as for playerDisconnected
        pc = RTCPeerConnection(rtc_configuration(self.options))
        self.peers[player_id] = pc
        transceiver = pc.addTransceiver(CarTrack(self.live, self.fps), direction="sendonly")
        vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "VP8"]
        transceiver.setCodecPreferences(vp8)
        channel = pc.createDataChannel("datachannel")
        self.controls = controls.Controls()

        def on_open() -> None:
            # Unreal's FStreamer::OnDataChannelOpen: protocol, settings, ownership.
            for data in epic_protocol.protocol_messages():
                channel.send(data)
            channel.send(epic_protocol.initial_settings(fps=self.fps))
            channel.send(epic_protocol.from_streamer_flag("InputControlOwnership", True))
            channel.send(epic_protocol.from_streamer_flag("QualityControlOwnership", True))

        def on_message(data: bytes | str) -> None:
            reply = self.on_message(data)
            if reply is not None and channel.readyState == "open":
                channel.send(reply)

        channel.on("open", on_open)
        channel.on("message", on_message)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed" and self.peers.get(player_id) is pc:
                self._spawn(self.media_lost(player_id, pc, "ICE failed"))

        if self.media_stall_s > 0:
            self._spawn(self.watch_media(player_id, pc, transceiver.sender))

        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        if self.options.get("iceTransportPolicy") == "relay" and " typ relay" not in sdp:
            log.error("%s (player %s)", NO_RELAY, player_id)
            self.peers.pop(player_id, None)
            await pc.close()
            await self.send({"type": "disconnectPlayer", "playerId": player_id, "reason": NO_RELAY})
            return
        await self.send({"type": "offer", "sdp": sdp, "playerId": player_id})

    async def watch_media(
        self, player_id: str, pc: RTCPeerConnection, sender: RTCRtpSender
    ) -> None:
        """Until this peer is replaced or closed: no receiver report from the player
        for `media_stall_s` after media flowed means the media path is dead."""
        watch = media_watch.MediaWatch(self.media_stall_s)
        announced = False
        while self.peers.get(player_id) is pc and pc.connectionState != "closed":
            stats = dict(await sender.getStats())
            stamp, sent = media_watch.newest_report(stats), media_watch.packets_sent(stats)
            if watch.observe(stamp, sent, time.monotonic()):
                await self.media_lost(player_id, pc, watch.reason())
                return
            if watch.reported and not announced:
                # The agent counts a player back after an outage only from here.
                announced = True
                await self._send_media(player_id, "flowing", "")
            await asyncio.sleep(MEDIA_CHECK_S)

    async def _send_media(self, player_id: str, state: str, reason: str) -> None:
        msg: m.Message = {"type": m.STREAMFLEET_MEDIA, "playerId": player_id, "state": state}
        if reason:
            msg["reason"] = reason
        try:
            await self.send(msg)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.info("could not tell the agent: %s", exc)

    async def media_lost(self, player_id: str, pc: RTCPeerConnection, reason: str) -> None:
        """Tell the agent (`streamfleetMedia` stalled): it starts the outage's reconnect
        window and closes the player's socket with 1011 and this reason; Epic's
        library reconnects (fresh `config`, so fresh TURN credentials, and a fresh
        offer from us through whatever TURN now works)."""
        if self.peers.get(player_id) is not pc:
            return
        log.warning("player %s: %s; telling the agent", player_id, reason)
        self.peers.pop(player_id, None)
        await self._send_media(player_id, "stalled", reason)
        # After telling: closing waits for TURN to delete the allocations, which
        # with the TURN server gone takes its retransmissions (~10 s).
        await pc.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_message(self, data: bytes | str) -> bytes | None:
        """One data-channel message from the player; returns the answer to send back, if any."""
        if isinstance(data, str):
            # Not Epic's protocol: a frontend that sends a bare JSON descriptor as text.
            self.note_input()
            self.apply_descriptor(data)
            return None
        if data[:1] == bytes([epic_protocol.TO_STREAMER["TestEcho"][0]]):
            # Unreal echoes whatever text follows the id (the library's layout has none).
            return bytes([epic_protocol.FROM_STREAMER["TestEcho"]]) + data[1:]
        try:
            msg = epic_protocol.decode(data)
        except epic_protocol.MessageDecodeError as exc:
            log.info("bad data-channel message: %s", exc)
            return None
        if msg is None:
            return None  # an id outside the protocol: Unreal ignores it too
        if msg.name == "LatencyTest":
            received = time.monotonic() * 1000
            return epic_protocol.latency_report(received, time.monotonic() * 1000)
        if msg.name == "RequestInitialSettings":
            return epic_protocol.initial_settings(fps=self.fps)
        if msg.name == "RequestQualityControl":
            return epic_protocol.from_streamer_flag("QualityControlOwnership", True)
        if not msg.is_input:
            return None  # IFrameRequest, FpsRequest, ...: nothing to do for a stub
        self.note_input()
        if msg.name == "Command":
            # Unreal runs console commands (only with -AllowPixelStreamingCommands) and
            # resolution changes; it never feeds them to the scene. The stub has no console.
            log.info(
                "command %s: not applied (the stub has no console)",
                controls.parse_command(str(msg.fields[0])),
            )
            return None
        try:
            descriptor = self.controls.apply(msg)
        except (ValueError, TypeError) as exc:
            log.info("input rejected: %s", exc)
            return None
        if descriptor is not None:
            self.live.apply(descriptor)
        return None

    def apply_descriptor(self, text: str) -> None:
        try:
            descriptor = controls.descriptor_from_text(text)
        except (ValueError, TypeError) as exc:
            log.info("input rejected: %s", exc)
            return
        self.live.apply(descriptor)

    def note_input(self) -> None:
        """Count one input towards the next `streamfleetInput` report to the agent."""
        count, delay = self.reports.record(time.monotonic())
        if count is not None:
            self._report(count)
        elif delay is not None:
            self._flush = asyncio.get_running_loop().call_later(delay, self._flush_reports)

    def _flush_reports(self) -> None:
        self._flush = None
        count = self.reports.flush(time.monotonic())
        if count is not None:
            self._report(count)

    def _report(self, count: int) -> None:
        self._spawn(self._send_report(count))

    async def _send_report(self, count: int) -> None:
        try:
            await self.send(activity.message(count))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.info("could not report input to the agent: %s", exc)

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        for task in list(self._tasks):
            task.cancel()
        for pc in list(self.peers.values()):
            await pc.close()
        self.peers.clear()


async def run(args: argparse.Namespace) -> int:
    initial = scene.from_configuration(json.loads(args.configuration))
    live = Scene(initial, args.width, args.height)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(args.signalling_url, heartbeat=20.0) as ws,
    ):
        streamer = Streamer(ws, live, args.fps, args.media_stall_s)
        log.info("connected to %s", args.signalling_url)

        async def pump() -> None:
            async for frame in ws:
                if frame.type is aiohttp.WSMsgType.TEXT:
                    try:
                        await streamer.handle(json.loads(frame.data))
                    except (KeyError, ValueError) as exc:
                        log.warning("bad signalling message: %s", exc)

        pump_task = asyncio.create_task(pump())
        stop_task = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({pump_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        for task in (pump_task, stop_task):
            task.cancel()
        await streamer.close()
        if pump_task in done and not stop.is_set():
            log.error("signalling connection closed")
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--signalling-url", required=True, help="the agent's streamer endpoint (ws://)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument(
        "--media-stall-s",
        type=float,
        default=media_watch.DEFAULT_STALL_S,
        help="disconnect a player whose receiver reports stopped this long (0: never)",
    )
    p.add_argument(
        "--configuration",
        default="{}",
        help='initial car configuration as JSON, e.g. {"paint": "#c01e1e", "wheels": "sport"}',
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from streamfleet.logs import setup_logging

    setup_logging("renderer")
    try:
        return asyncio.run(run(build_parser().parse_args(argv)))
    except (aiohttp.ClientError, OSError) as exc:
        log.error("cannot reach the signalling server: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
