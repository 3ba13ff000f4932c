"""Signalling codec against Epic's protocol 1.3.0 messages (tests/vectors/pixel_streaming_1_3.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from regional_stack.agent.supervisor import render_argv
from regional_stack.signalling import closing
from regional_stack.signalling import messages as m

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "pixel_streaming_1_3.json").read_text()
)
ALLOWED = {"player": m.PLAYER_TYPES, "streamer": m.STREAMER_TYPES}


def test_version_is_the_one_epics_library_speaks() -> None:
    assert m.PROTOCOL_VERSION == VECTORS["protocolVersion"] == "1.3.0"


def test_every_message_a_sender_may_send_has_a_vector() -> None:
    assert set(VECTORS["player_to_server"]) == m.PLAYER_TYPES
    assert set(VECTORS["streamer_to_server"]) == m.STREAMER_TYPES


@pytest.mark.parametrize(
    ("sender", "kind"),
    [("player", k) for k in VECTORS["player_to_server"]]
    + [("streamer", k) for k in VECTORS["streamer_to_server"]],
)
def test_parse_accepts_recorded_messages(sender: str, kind: str) -> None:
    msg = VECTORS[f"{sender}_to_server"][kind]
    assert m.parse(json.dumps(msg), ALLOWED[sender]) == msg


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["why"])
def test_parse_refuses(case: dict[str, str]) -> None:
    with pytest.raises(m.ProtocolError):
        m.parse(case["text"], ALLOWED[case["from"]])


def test_parse_refuses_oversized() -> None:
    with pytest.raises(m.ProtocolError, match="too large"):
        m.parse('{"type":"ping","pad":"' + "x" * m.MAX_MESSAGE_BYTES + '"}', m.STREAMER_TYPES)


@pytest.mark.parametrize("kind", sorted(m.PLAYER_TO_STREAMER))
def test_player_messages_reach_the_streamer_tagged(kind: str) -> None:
    sent = VECTORS["player_to_server"][kind]
    assert m.to_streamer(sent, "player-1") == VECTORS["server_to_streamer"][kind]


@pytest.mark.parametrize("kind", sorted(m.STREAMER_TO_PLAYER))
def test_streamer_messages_reach_the_player_untagged(kind: str) -> None:
    sent = VECTORS["streamer_to_server"][kind]
    assert m.to_player(sent) == VECTORS["server_to_player"][kind]


def test_server_messages_are_epics_shapes() -> None:
    to_player, to_streamer = VECTORS["server_to_player"], VECTORS["server_to_streamer"]
    options = to_player["config"]["peerConnectionOptions"]
    assert m.config(options) == to_player["config"]
    assert m.player_count(1) == to_player["playerCount"]
    assert m.streamer_list(["DefaultStreamer"]) == to_player["streamerList"]
    assert (
        m.subscribe_failed("Streamer NoSuchStreamer does not exist.")
        == (to_player["subscribeFailed"])
    )
    assert m.pong(1733050000123) == to_player["pong"]
    assert m.config({"iceTransportPolicy": "relay"}) == to_streamer["config"]
    assert m.identify() == to_streamer["identify"]
    assert m.endpoint_id_confirm("DefaultStreamer") == to_streamer["endpointIdConfirm"]
    assert m.player_connected("player-1") == to_streamer["playerConnected"]
    assert m.player_disconnected("player-1") == to_streamer["playerDisconnected"]
    assert m.pong(1733050001000) == to_streamer["pong"]


def test_input_count() -> None:
    assert m.input_count(VECTORS["streamer_to_server"]["streamfleetInput"]) == 3
    assert m.input_count({"type": m.STREAMFLEET_INPUT}) == 1


def test_close_codes_epics_library_understands() -> None:
    ended = closing.session_ended("idle")
    assert (ended.code, ended.reason, ended.final) == (1001, "session ended: idle", True)
    assert closing.ended_reason(ended.reason) == "idle"
    by_streamer = closing.disconnected_by_streamer("no TURN relay candidate")
    assert (by_streamer.code, by_streamer.final) == (1011, False)
    assert closing.disconnected_by_streamer("").reason == "disconnected by streamer"
    assert (closing.streamer_gone().code, closing.streamer_gone().final) == (1012, False)
    assert closing.ended_reason("streamer disconnected") is None
    # A renderer crash re-places the session: retryable, and not an end reason.
    replaced = closing.session_replaced()
    assert (replaced.code, replaced.final) == (1011, False)
    assert closing.ended_reason(replaced.reason) is None
    long = closing.session_ended("é" * 200)
    assert len(long.reason_bytes()) <= closing.MAX_REASON_BYTES
    long.reason_bytes().decode()  # cut on a character boundary


def test_renderer_command_placeholders() -> None:
    argv = render_argv(
        "/opt/app/Configurator.sh -PixelStreamingURL={streamer_url} -ResX={width} 'a b'",
        {"streamer_url": "ws://127.0.0.1:8888/", "width": "320"},
    )
    assert argv == [
        "/opt/app/Configurator.sh",
        "-PixelStreamingURL=ws://127.0.0.1:8888/",
        "-ResX=320",
        "a b",
    ]
    with pytest.raises(ValueError):
        render_argv("  ", {})
