"""The stub's answers on the data channel and its reports to the agent, message by message.

Recorded Epic messages in, the stub's replies and `streamfleetInput` out; the
signalling socket is a recorder (no network), the clock is real but short.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import aiohttp

from regional_stack.renderer import epic_protocol as ep
from regional_stack.renderer import scene
from regional_stack.renderer.stub import Scene, Streamer

RECORDED = {
    (r["name"], json.dumps(r["fields"])): bytes.fromhex(r["hex"])
    for r in json.loads((Path(__file__).parent / "epic_messages.json").read_text())["messages"]
}


def rec(name: str, *fields: object) -> bytes:
    """The bytes Epic's library sent for this message (epic_messages.json)."""
    return RECORDED[(name, json.dumps(list(fields)))]


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_str(self, text: str) -> None:
        self.sent.append(json.loads(text))


def streamer() -> tuple[Streamer, RecordingSocket]:
    ws = RecordingSocket()
    live = Scene(scene.SceneState(), 320, 180)
    s = Streamer(cast(aiohttp.ClientWebSocketResponse, ws), live, fps=30)
    s.reports.period_s = 0.2
    return s, ws


def text(reply: bytes | None) -> Any:
    assert reply is not None
    return json.loads(reply[1:].decode("utf-16-le"))


async def test_control_messages_are_answered_as_unreal_does_and_are_not_input() -> None:
    s, ws = streamer()
    latency = s.on_message(rec("LatencyTest", '{"StartTime":1733050000000}'))
    assert latency is not None and latency[0] == ep.FROM_STREAMER["LatencyTest"]
    assert set(text(latency)) == {
        "ReceiptTimeMs",
        "EncodeMs",
        "CaptureToSendMs",
        "TransmissionTimeMs",
    }
    settings = s.on_message(rec("RequestInitialSettings"))
    assert settings is not None and text(settings)["WebRTC"]["FPS"] == 30
    assert s.on_message(rec("RequestQualityControl")) == b"\x00\x01"
    assert s.on_message(b"\x08hi") == b"\x0bhi"  # TestEcho
    assert s.on_message(b"\x00") is None  # IFrameRequest: nothing to say
    await asyncio.sleep(0.3)
    assert ws.sent == []  # the library's own control messages are not user activity
    assert s.live.inputs == 0


async def test_input_moves_the_scene_and_is_reported_once_a_period() -> None:
    s, ws = streamer()
    assert s.on_message(rec("UIInteraction", '"toggle_frunk"')) is None
    s.on_message(rec("KeyDown", 39, 0))
    s.on_message(rec("MouseEnter"))
    assert s.live.state.frunk_open and s.live.state.orbit_deg == 35.0
    await asyncio.sleep(0)  # the first report goes out at once...
    assert ws.sent == [{"type": "streamfleetInput", "count": 1}]
    await asyncio.sleep(0.3)  # ...the rest when the period ends, counted
    assert ws.sent[1:] == [{"type": "streamfleetInput", "count": 2}]
    await s.close()


async def test_command_counts_as_input_but_never_touches_the_scene() -> None:
    s, ws = streamer()
    before = s.live.state
    assert s.on_message(rec("Command", '{"ConsoleCommand":"stat fps"}')) is None
    # Even a Command that looks like a scene descriptor is not scene input.
    s.on_message(ep.encode("Command", '{"type":"toggle_frunk"}'))
    assert s.live.state == before
    await asyncio.sleep(0)
    assert ws.sent == [{"type": "streamfleetInput", "count": 1}]
    await s.close()


async def test_bad_messages_are_dropped_quietly() -> None:
    s, _ws = streamer()
    assert s.on_message(b"\x48\x00") is None  # truncated MouseDown
    assert s.on_message(b"\xc8") is None  # not in the protocol
    assert s.on_message(ep.encode("UIInteraction", "[1]")) is None  # counted, rejected
    assert s.live.inputs == 0
    await s.close()
