"""Pixel Streaming signalling messages: the shapes we send and accept.

Follows Epic's signalling protocol 1.1.0 as defined by
EpicGamesExt/PixelStreamingInfrastructure (Common/protobuf/signalling_messages.proto,
Signalling/docs/Protocol.md): JSON text frames with a `type` field. Only the
subset a single-streamer, single-player server needs is modelled; anything
else is refused by `parse`. docs/pixel-streaming.md lists the subset.
Pure; no I/O.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = "1.1.0"
MAX_MESSAGE_BYTES = 64 * 1024

# Who may send what (Protocol.md "Player Sent Messages" / "Streamer Sent Message").
PLAYER_TYPES = frozenset(
    {"listStreamers", "subscribe", "unsubscribe", "answer", "offer", "iceCandidate", "ping",
     "dataChannelRequest", "peerDataChannelsReady", "stats",
     # streamfleet extension: the player reports user input so the agent can
     # enforce the idle timeout without seeing the peer-to-peer data channel.
     "inputActivity"}
)  # fmt: skip
STREAMER_TYPES = frozenset(
    {"endpointId", "offer", "answer", "iceCandidate", "disconnectPlayer", "ping",
     "layerPreference"}
)  # fmt: skip

Message = dict[str, Any]


class ProtocolError(ValueError):
    """A frame that is not a valid signalling message for its sender."""


def parse(text: str | bytes, allowed: frozenset[str]) -> Message:
    if len(text) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message too large")
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("not a message object with a string 'type'")
    if msg["type"] not in allowed:
        raise ProtocolError(f"unexpected message type {msg['type']!r}")
    if msg["type"] in ("offer", "answer") and not isinstance(msg.get("sdp"), str):
        raise ProtocolError(f"{msg['type']} without an sdp string")
    if msg["type"] == "iceCandidate" and not isinstance(msg.get("candidate"), dict):
        raise ProtocolError("iceCandidate without a candidate object")
    return msg


def dump(msg: Message) -> str:
    return json.dumps(msg, separators=(",", ":"))


def config(peer_connection_options: dict[str, Any]) -> Message:
    return {
        "type": "config",
        "peerConnectionOptions": peer_connection_options,
        "protocolVersion": PROTOCOL_VERSION,
    }


def identify() -> Message:
    return {"type": "identify"}


def endpoint_id_confirm(committed_id: str) -> Message:
    return {"type": "endpointIdConfirm", "committedId": committed_id}


def streamer_list(ids: list[str]) -> Message:
    return {"type": "streamerList", "ids": ids}


def player_count(count: int) -> Message:
    return {"type": "playerCount", "count": count}


def player_connected(player_id: str) -> Message:
    return {"type": "playerConnected", "playerId": player_id, "dataChannel": True, "sfu": False}


def player_disconnected(player_id: str) -> Message:
    return {"type": "playerDisconnected", "playerId": player_id}


def streamer_disconnected() -> Message:
    return {"type": "streamerDisconnected"}


def pong(time: Any) -> Message:
    return {"type": "pong", "time": time}


def to_streamer(msg: Message, player_id: str) -> Message:
    """A player's offer/answer/iceCandidate as the streamer sees it: tagged with the player."""
    return {**msg, "playerId": player_id}


def to_player(msg: Message) -> Message:
    """A streamer's message as the player sees it: the routing field removed."""
    return {k: v for k, v in msg.items() if k != "playerId"}
