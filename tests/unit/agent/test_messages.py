from __future__ import annotations

import pytest

from regional_stack.agent.supervisor import render_argv
from regional_stack.signalling import messages as m


def test_parse_accepts_player_messages() -> None:
    msg = m.parse('{"type":"answer","sdp":"v=0"}', m.PLAYER_TYPES)
    assert msg == {"type": "answer", "sdp": "v=0"}


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("not json", m.PLAYER_TYPES),
        ("[]", m.PLAYER_TYPES),
        ('{"type": 5}', m.PLAYER_TYPES),
        ('{"type":"endpointId","id":"x"}', m.PLAYER_TYPES),  # a streamer-only message
        ('{"type":"disconnectPlayer","playerId":"p"}', m.PLAYER_TYPES),
        ('{"type":"offer"}', m.STREAMER_TYPES),
        ('{"type":"iceCandidate","candidate":"x"}', m.STREAMER_TYPES),
        ('{"type":"ping","pad":"' + "x" * m.MAX_MESSAGE_BYTES + '"}', m.STREAMER_TYPES),
    ],
)
def test_parse_refuses(text: str, allowed: frozenset[str]) -> None:
    with pytest.raises(m.ProtocolError):
        m.parse(text, allowed)


def test_routing_adds_and_strips_player_id() -> None:
    offer = {"type": "offer", "sdp": "v=0", "playerId": "player-1"}
    assert m.to_player(offer) == {"type": "offer", "sdp": "v=0"}
    assert m.to_streamer({"type": "answer", "sdp": "v=0"}, "player-2")["playerId"] == "player-2"


def test_shapes_follow_protocol_1_1_0() -> None:
    assert m.config({"iceServers": []}) == {
        "type": "config",
        "peerConnectionOptions": {"iceServers": []},
        "protocolVersion": "1.1.0",
    }
    assert m.player_connected("p") == {
        "type": "playerConnected",
        "playerId": "p",
        "dataChannel": True,
        "sfu": False,
    }
    assert m.endpoint_id_confirm("s") == {"type": "endpointIdConfirm", "committedId": "s"}


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
