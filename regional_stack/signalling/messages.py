"""Pixel Streaming signalling messages: the shapes we send and accept. Pure; no I/O.

Follows Epic's signalling protocol **1.3.0**, the version of
`SignallingProtocol.SIGNALLING_VERSION` in `@epicgames-ps/lib-pixelstreamingcommon-ue5.5`
that `@epicgames-ps/lib-pixelstreamingfrontend-ue5.5` 1.3.0 speaks
(EpicGamesExt/PixelStreamingInfrastructure, branch UE5.5:
`Common/protobuf/signalling_messages.proto`, `Common/docs/Protocol.md`,
`Signalling/src/PlayerConnection.ts`, `Signalling/src/StreamerConnection.ts`).
Messages are JSON text frames with a `type` field; fields beyond the ones
checked here pass through untouched, as Epic's server forwards them.

`parse` accepts every type a sender may send and checks only the fields the
agent relies on; `ProtocolError` means "log and ignore this frame", as Epic's
server does with messages it does not handle. docs/pixel-streaming.md lists
every message.
"""

from __future__ import annotations

import json
from typing import Any

from streamfleet import strict_json

PROTOCOL_VERSION = "1.3.0"
MAX_MESSAGE_BYTES = 64 * 1024
# streamfleet's own streamer -> agent message: the renderer received user input.
STREAMFLEET_INPUT = "streamfleetInput"
MAX_INPUT_COUNT = 1_000_000
# streamfleet's own streamer -> agent message: the media to a player stalled
# (the renderer's media watch) or flows (again). docs/pixel-streaming.md.
STREAMFLEET_MEDIA = "streamfleetMedia"
MEDIA_STATES = frozenset({"stalled", "flowing"})

# What Epic's frontend library 1.3.0 sends (WebRtcPlayerController.ts,
# KeepaliveMonitor.ts), plus `stats` (older frontends) and streamfleet's
# optional page-side `inputActivity`.
PLAYER_TYPES = frozenset(
    {"listStreamers", "subscribe", "unsubscribe", "offer", "answer", "iceCandidate",
     "ping", "pong", "layerPreference", "dataChannelRequest", "peerDataChannelsReady",
     "stats", "inputActivity"}
)  # fmt: skip
# What an Unreal streamer (or the stub) sends (StreamerConnection.ts), plus
# streamfleet's optional `streamfleetInput` and `streamfleetMedia`.
STREAMER_TYPES = frozenset(
    {"endpointId", "offer", "answer", "iceCandidate", "disconnectPlayer", "ping", "pong",
     "layerPreference", STREAMFLEET_INPUT, STREAMFLEET_MEDIA}
)  # fmt: skip
# Player messages Epic's server forwards to the streamer, tagged with `playerId`.
PLAYER_TO_STREAMER = frozenset(
    {"offer", "answer", "iceCandidate", "layerPreference", "dataChannelRequest",
     "peerDataChannelsReady"}
)  # fmt: skip
# Streamer messages forwarded to the player named by their `playerId`.
STREAMER_TO_PLAYER = frozenset({"offer", "answer", "iceCandidate"})

Message = dict[str, Any]


class ProtocolError(ValueError):
    """A frame that is not a valid signalling message for its sender."""


def parse(text: str | bytes, allowed: frozenset[str]) -> Message:
    if len(text) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message too large")
    try:
        # The edge's one strict parser: bounded depth, finite numbers, unique keys.
        msg = strict_json.loads(text, max_bytes=MAX_MESSAGE_BYTES)
    except strict_json.JsonRefused as exc:
        raise ProtocolError(f"not JSON: {exc.reason}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("not a message object with a string 'type'")
    kind = msg["type"]
    if kind not in allowed:
        raise ProtocolError(f"unexpected message type {kind!r}")
    _check_fields(kind, msg)
    return msg


def _check_fields(kind: str, msg: Message) -> None:
    if kind in ("offer", "answer") and not isinstance(msg.get("sdp"), str):
        raise ProtocolError(f"{kind} without an sdp string")
    if kind == "iceCandidate" and not isinstance(msg.get("candidate"), dict):
        raise ProtocolError("iceCandidate without a candidate object")
    if kind == "subscribe" and not isinstance(msg.get("streamerId", ""), str):
        raise ProtocolError("subscribe with a non-string streamerId")
    if kind == "disconnectPlayer" and not isinstance(msg.get("playerId"), str):
        raise ProtocolError("disconnectPlayer without a playerId string")
    if kind == "endpointId" and not isinstance(msg.get("id", ""), str):
        raise ProtocolError("endpointId with a non-string id")
    if kind == STREAMFLEET_MEDIA:
        if not isinstance(msg.get("playerId"), str) or msg.get("state") not in MEDIA_STATES:
            raise ProtocolError(
                f"{STREAMFLEET_MEDIA} needs a playerId string and state stalled|flowing"
            )
        if not isinstance(msg.get("reason", ""), str):
            raise ProtocolError(f"{STREAMFLEET_MEDIA}.reason must be a string")
    if kind == STREAMFLEET_INPUT and "count" in msg:
        count = msg["count"]
        if type(count) is not int or not 1 <= count <= MAX_INPUT_COUNT:
            raise ProtocolError(
                f"{STREAMFLEET_INPUT}.count must be an integer 1..{MAX_INPUT_COUNT}"
            )


def dump(msg: Message) -> str:
    return json.dumps(msg, separators=(",", ":"))


# -- server -> either ----------------------------------------------------------
def config(peer_connection_options: dict[str, Any]) -> Message:
    """`peerConnectionOptions` is an `RTCConfiguration`: Epic's library passes it
    to `new RTCPeerConnection(...)` as it is (PeerConnectionController.ts)."""
    return {
        "type": "config",
        "peerConnectionOptions": peer_connection_options,
        "protocolVersion": PROTOCOL_VERSION,
    }


def pong(time: Any) -> Message:
    return {"type": "pong", "time": time}


# -- server -> streamer --------------------------------------------------------
def identify() -> Message:
    return {"type": "identify"}


def endpoint_id_confirm(committed_id: str) -> Message:
    return {"type": "endpointIdConfirm", "committedId": committed_id}


def player_connected(player_id: str) -> Message:
    return {"type": "playerConnected", "playerId": player_id, "dataChannel": True, "sfu": False}


def player_disconnected(player_id: str) -> Message:
    return {"type": "playerDisconnected", "playerId": player_id}


def to_streamer(msg: Message, player_id: str) -> Message:
    """A player's message as the streamer sees it: tagged with the player."""
    return {**msg, "playerId": player_id}


# -- server -> player ----------------------------------------------------------
def streamer_list(ids: list[str]) -> Message:
    return {"type": "streamerList", "ids": ids}


def subscribe_failed(message: str) -> Message:
    return {"type": "subscribeFailed", "message": message}


def player_count(count: int) -> Message:
    return {"type": "playerCount", "count": count}


def to_player(msg: Message) -> Message:
    """A streamer's message as the player sees it: the routing field removed."""
    return {k: v for k, v in msg.items() if k != "playerId"}


def input_count(msg: Message) -> int:
    """How many inputs a `streamfleetInput` reports (1 when it does not say)."""
    count = msg.get("count", 1)
    return count if type(count) is int and count > 0 else 1
