"""Pixel Streaming's data-channel protocol, as Epic's frontend library and Unreal speak it.

The message ids and layouts are those of Epic's frontend library
(`@epicgames-ps/lib-pixelstreamingfrontend-ue5.5` 1.3.0,
`StreamMessageController.populateDefaultProtocol`), which mirror the Unreal
plugin's `FPixelStreamingInputProtocol`. Pure codec: no I/O.

Player -> streamer ("ToStreamer"): one byte id, then the fields of its layout,
little-endian; a `string` field is a uint16 count of UTF-16 code units
followed by the text in UTF-16LE (`SendMessageController.sendMessageToStreamer`).

Streamer -> player ("FromStreamer"): one byte id, then either a UTF-16LE text
with no length prefix (Unreal's `DataChannel->SendMessage(Id, FString)`, which
the library reads with `TextDecoder('utf-16').decode(data.slice(1))`) or one
uint8 (the ownership messages).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

# name -> (id, layout). Control messages 0..49, input messages 50 and up.
TO_STREAMER: dict[str, tuple[int, tuple[str, ...]]] = {
    "IFrameRequest": (0, ()),
    "RequestQualityControl": (1, ()),
    "FpsRequest": (2, ()),
    "AverageBitrateRequest": (3, ()),
    "StartStreaming": (4, ()),
    "StopStreaming": (5, ()),
    "LatencyTest": (6, ("string",)),
    "RequestInitialSettings": (7, ()),
    "TestEcho": (8, ()),
    "DataChannelLatencyTest": (9, ()),
    "UIInteraction": (50, ("string",)),
    "Command": (51, ("string",)),
    "TextboxEntry": (52, ("string",)),
    "KeyDown": (60, ("uint8", "uint8")),  # keyCode, isRepeat
    "KeyUp": (61, ("uint8",)),  # keyCode
    "KeyPress": (62, ("uint16",)),  # charCode
    "MouseEnter": (70, ()),
    "MouseLeave": (71, ()),
    "MouseDown": (72, ("uint8", "uint16", "uint16")),  # button, x, y
    "MouseUp": (73, ("uint8", "uint16", "uint16")),
    "MouseMove": (74, ("uint16", "uint16", "int16", "int16")),  # x, y, dx, dy
    "MouseWheel": (75, ("int16", "uint16", "uint16")),  # delta, x, y
    "MouseDouble": (76, ("uint8", "uint16", "uint16")),
    # numTouches (always 1), x, y, touch index, force (0..255), valid
    "TouchStart": (80, ("uint8", "uint16", "uint16", "uint8", "uint8", "uint8")),
    "TouchEnd": (81, ("uint8", "uint16", "uint16", "uint8", "uint8", "uint8")),
    "TouchMove": (82, ("uint8", "uint16", "uint16", "uint8", "uint8", "uint8")),
    "GamepadButtonPressed": (90, ("uint8", "uint8", "uint8")),  # controller, button, isRepeat
    "GamepadButtonReleased": (91, ("uint8", "uint8", "uint8")),
    "GamepadAnalog": (92, ("uint8", "uint8", "double")),  # controller, axis, value
    "GamepadConnected": (93, ()),
    "GamepadDisconnected": (94, ("uint8",)),
}
FROM_STREAMER: dict[str, int] = {
    "QualityControlOwnership": 0,
    "Response": 1,
    "Command": 2,
    "FreezeFrame": 3,
    "UnfreezeFrame": 4,
    "VideoEncoderAvgQP": 5,
    "LatencyTest": 6,
    "InitialSettings": 7,
    "FileExtension": 8,
    "FileMimeType": 9,
    "FileContents": 10,
    "TestEcho": 11,
    "InputControlOwnership": 12,
    "GamepadResponse": 13,
    "DataChannelLatencyTest": 14,
    "Protocol": 255,
}
BY_ID: dict[int, str] = {mid: name for name, (mid, _) in TO_STREAMER.items()}
# Epic's numbering puts user input from 50 on; 0..49 are control messages the
# library sends by itself (RequestInitialSettings, LatencyTest, ...).
FIRST_INPUT_ID = 50
UINT16_MAX = 65535
INT16_MAX = 32767

_FIXED = {"uint8": "<B", "uint16": "<H", "int16": "<h", "float": "<f", "double": "<d"}


class MessageDecodeError(ValueError):
    """Bytes that do not follow the layout of their message id."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded player -> streamer message: its name and its fields in layout order."""

    name: str
    fields: tuple[int | float | str, ...] = ()

    @property
    def is_input(self) -> bool:
        return TO_STREAMER[self.name][0] >= FIRST_INPUT_ID


def encode(name: str, *fields: int | float | str) -> bytes:
    """A player -> streamer message, byte for byte as Epic's library sends it."""
    mid, layout = TO_STREAMER[name]
    if len(fields) != len(layout):
        raise ValueError(f"{name} takes {len(layout)} fields, got {len(fields)}")
    out = bytearray([mid])
    for kind, value in zip(layout, fields, strict=True):
        if kind == "string":
            units = str(value).encode("utf-16-le")
            if len(units) // 2 > UINT16_MAX:
                raise ValueError("string too long")
            out += struct.pack("<H", len(units) // 2) + units
        else:
            out += struct.pack(_FIXED[kind], value)
    return bytes(out)


def decode(data: bytes) -> Message | None:
    """The message in `data`; None for an id outside Epic's protocol (ignored, as Unreal does)."""
    if not data:
        raise MessageDecodeError("empty message")
    name = BY_ID.get(data[0])
    if name is None:
        return None
    layout = TO_STREAMER[name][1]
    fields: list[int | float | str] = []
    at = 1
    for kind in layout:
        if kind == "string":
            if len(data) < at + 2:
                raise MessageDecodeError(f"{name}: truncated string length")
            (count,) = struct.unpack_from("<H", data, at)
            at += 2
            raw = data[at : at + 2 * count]
            if len(raw) != 2 * count:
                raise MessageDecodeError(f"{name}: length says {count} code units, got fewer")
            try:
                fields.append(raw.decode("utf-16-le"))
            except UnicodeDecodeError as exc:
                raise MessageDecodeError(f"{name}: text is not UTF-16: {exc}") from exc
            at += 2 * count
        else:
            fmt = _FIXED[kind]
            size = struct.calcsize(fmt)
            if len(data) < at + size:
                raise MessageDecodeError(f"{name}: truncated {kind} field")
            fields.append(struct.unpack_from(fmt, data, at)[0])
            at += size
    if at != len(data):
        raise MessageDecodeError(f"{name}: {len(data) - at} bytes after the last field")
    return Message(name, tuple(fields))


# ---- streamer -> player ------------------------------------------------------


def from_streamer_text(name: str, text: str) -> bytes:
    """A streamer -> player message carrying text (Unreal: `SendMessage(Id, FString)`)."""
    return bytes([FROM_STREAMER[name]]) + text.encode("utf-16-le")


def from_streamer_flag(name: str, value: bool) -> bytes:
    """A streamer -> player uint8 message (QualityControlOwnership, InputControlOwnership)."""
    return bytes([FROM_STREAMER[name], 1 if value else 0])


def protocol_messages() -> list[bytes]:
    """The two `Protocol` messages Unreal sends when the data channel opens.

    Direction 0 lists what the streamer accepts, direction 1 what it sends;
    the library adopts them before it asks for the initial settings.
    """
    to_streamer: dict[str, Any] = {"Direction": 0}
    for name, (mid, layout) in TO_STREAMER.items():
        entry: dict[str, Any] = {"id": mid}
        if layout:
            entry["structure"] = list(layout)
        to_streamer[name] = entry
    from_streamer: dict[str, Any] = {"Direction": 1}
    from_streamer.update({name: {"id": mid} for name, mid in FROM_STREAMER.items()})
    return [
        from_streamer_text("Protocol", json.dumps(to_streamer, separators=(",", ":"))),
        from_streamer_text("Protocol", json.dumps(from_streamer, separators=(",", ":"))),
    ]


def initial_settings(*, fps: int, allow_console_commands: bool = False) -> bytes:
    """`InitialSettings`, with the sections and keys of Unreal's `FStreamer::SendInitialSettings`."""
    payload = {
        "PixelStreaming": {
            "AllowPixelStreamingCommands": allow_console_commands,
            "DisableLatencyTest": False,
        },
        "Encoder": {
            "TargetBitrate": -1,
            "MaxBitrate": 20_000_000,
            "MinQP": 0,
            "MaxQP": 51,
            "RateControl": "CBR",
            "FillerData": 0,
            "MultiPass": "FULL",
        },
        "WebRTC": {
            "DegradationPref": "MAINTAIN_FRAMERATE",
            "FPS": fps,
            "MinBitrate": 100_000,
            "MaxBitrate": 100_000_000,
            "LowQP": 25,
            "HighQP": 37,
        },
        "ConfigOptions": {},
    }
    return from_streamer_text("InitialSettings", json.dumps(payload, separators=(",", ":")))


def latency_report(receipt_ms: float, transmission_ms: float, encode_ms: float = -1.0) -> bytes:
    """The answer to `LatencyTest` (Unreal: `FStreamer::SendLatencyReport`), times in ms."""
    report = {
        "ReceiptTimeMs": round(receipt_ms, 2),
        "EncodeMs": round(encode_ms, 2),
        "CaptureToSendMs": 0.0,
        "TransmissionTimeMs": round(transmission_ms, 2),
    }
    return from_streamer_text("LatencyTest", json.dumps(report, separators=(",", ":")))
