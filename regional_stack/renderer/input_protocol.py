"""Pixel Streaming data-channel input: the UIInteraction message and our descriptors.

A Pixel Streaming frontend sends application input as `UIInteraction`
(message id 50): one byte id, a little-endian uint16 count of UTF-16 code
units, then the JSON descriptor in UTF-16LE (Epic's `emitUIInteraction` /
`emitDescriptor`). A real Unreal configurator receives the same bytes through
its `OnInputEvent` / UIInteraction handler, so the stub and Unreal take
identical input.

Descriptors (our application protocol, docs/pixel-streaming.md):
`{"type": "orbit", "dx_deg": 15, "seq": 7}`, `zoom` (`factor`), `set_paint`
(`color`: "#rrggbb"), `toggle_frunk`, `toggle_doors`, `set_wheels` (`style`).
`seq` (1..65535) is echoed in the frame marker. Pure; no I/O.

The stub itself decodes the whole data-channel protocol with epic_protocol.py
(any Epic message, string descriptors too); this module is the descriptor
encoder of the test player and a strict descriptor-only decoder.
"""

from __future__ import annotations

import json
import struct
from typing import Any

UI_INTERACTION = 50
COMMAND = 51


class InputDecodeError(ValueError):
    """Bytes that are not a well-formed UIInteraction message."""


def encode_ui_interaction(descriptor: dict[str, Any]) -> bytes:
    text = json.dumps(descriptor, separators=(",", ":"))
    units = text.encode("utf-16-le")
    count = len(units) // 2
    if count > 0xFFFF:
        raise ValueError("descriptor too long")
    return struct.pack("<BH", UI_INTERACTION, count) + units


def decode_message(data: bytes) -> tuple[int, dict[str, Any] | None]:
    """(message id, descriptor) for descriptor messages; (id, None) for any other input."""
    if not data:
        raise InputDecodeError("empty message")
    kind = data[0]
    if kind not in (UI_INTERACTION, COMMAND):
        return kind, None
    if len(data) < 3:
        raise InputDecodeError("truncated header")
    (count,) = struct.unpack_from("<H", data, 1)
    body = data[3:]
    if len(body) != 2 * count:
        raise InputDecodeError(f"length says {count} code units, got {len(body) / 2}")
    try:
        descriptor = json.loads(body.decode("utf-16-le"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDecodeError(f"descriptor is not JSON: {exc}") from exc
    if not isinstance(descriptor, dict):
        raise InputDecodeError("descriptor is not a JSON object")
    return kind, descriptor
