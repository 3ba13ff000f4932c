"""The data-channel codec against messages recorded from Epic's own encoder, both directions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from regional_stack.renderer import epic_protocol as ep

RECORDED: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "epic_messages.json").read_text()
)["messages"]


@pytest.mark.parametrize("rec", RECORDED, ids=lambda r: str(r["name"]))
def test_decodes_what_epics_library_sends(rec: dict[str, Any]) -> None:
    msg = ep.decode(bytes.fromhex(rec["hex"]))
    assert msg is not None
    assert msg.name == rec["name"]
    assert list(msg.fields) == rec["fields"]


@pytest.mark.parametrize("rec", RECORDED, ids=lambda r: str(r["name"]))
def test_encodes_byte_for_byte_like_epics_library(rec: dict[str, Any]) -> None:
    assert ep.encode(rec["name"], *rec["fields"]).hex() == rec["hex"]


def test_every_message_of_the_registry_round_trips() -> None:
    samples = {"uint8": 200, "uint16": 65000, "int16": -300, "double": -0.25, "string": "añ€"}
    for name, (_, layout) in ep.TO_STREAMER.items():
        fields = tuple(samples[kind] for kind in layout)
        assert ep.decode(ep.encode(name, *fields)) == ep.Message(name, fields)


def test_input_range_starts_at_ui_interaction() -> None:
    assert not ep.Message("LatencyTest", ("{}",)).is_input
    assert not ep.Message("RequestInitialSettings").is_input
    assert ep.Message("UIInteraction", ("{}",)).is_input
    assert ep.Message("MouseMove", (1, 2, 3, 4)).is_input


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x32\x05",  # string length cut short
        b"\x32\x02\x00{\x00",  # says 2 code units, has 1
        b"\x32\x01\x00\x00\xd8",  # a lone surrogate
        b"\x48\x00\x00",  # MouseDown without y
        b"\x3d\x27\x00",  # KeyUp with a byte too many
    ],
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(ep.MessageDecodeError):
        ep.decode(data)


def test_unknown_ids_are_ignored_not_refused() -> None:
    assert ep.decode(b"\xc8\x01\x02") is None


def _text(data: bytes) -> Any:
    """What the library does with a streamer message: TextDecoder('utf-16') of data.slice(1)."""
    return json.loads(data[1:].decode("utf-16-le"))


def test_protocol_messages_are_what_the_library_adopts() -> None:
    to_streamer, from_streamer = (_text(m) for m in ep.protocol_messages())
    for m in ep.protocol_messages():
        assert m[0] == 255
    assert to_streamer.pop("Direction") == 0
    assert from_streamer.pop("Direction") == 1
    # Every message has an id (the library drops entries without one) and the
    # layouts are those of its own default protocol.
    assert to_streamer["MouseMove"] == {
        "id": 74,
        "structure": ["uint16", "uint16", "int16", "int16"],
    }
    assert to_streamer["RequestInitialSettings"] == {"id": 7}
    assert {k: v["id"] for k, v in from_streamer.items()} == ep.FROM_STREAMER
    assert set(to_streamer) == set(ep.TO_STREAMER)


def test_initial_settings_have_unreal_sections() -> None:
    data = ep.initial_settings(fps=30)
    assert data[0] == 7
    settings = _text(data)
    assert set(settings) == {"PixelStreaming", "Encoder", "WebRTC", "ConfigOptions"}
    assert settings["PixelStreaming"] == {
        "AllowPixelStreamingCommands": False,
        "DisableLatencyTest": False,
    }
    assert settings["WebRTC"]["FPS"] == 30


def test_latency_report_has_the_fields_the_library_reads() -> None:
    data = ep.latency_report(1000.004, 1001.5)
    assert data[0] == 6
    assert _text(data) == {
        "ReceiptTimeMs": 1000.0,
        "EncodeMs": -1.0,
        "CaptureToSendMs": 0.0,
        "TransmissionTimeMs": 1001.5,
    }


def test_ownership_flags_are_one_byte() -> None:
    assert ep.from_streamer_flag("InputControlOwnership", True) == b"\x0c\x01"
    assert ep.from_streamer_flag("QualityControlOwnership", False) == b"\x00\x00"
