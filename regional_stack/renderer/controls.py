"""What the stub's car scene does with Epic's standard input, as an Unreal app would.

`Controls.apply` turns one decoded data-channel message (epic_protocol.Message)
into a scene descriptor (scene.apply_input) or None:

- mouse: drag (MouseMove while a button is down) orbits, a full player width
  is one turn; the wheel zooms (one notch, wheelDelta 120, is x1.1);
- keys (JavaScript keyCodes, as the library sends them): Left/Right orbit
  15 deg, Up/Down zoom, F opens/closes the frunk, D the doors;
- touch: one finger dragging orbits like the mouse;
- gamepad: the left stick's X axis orbits;
- UIInteraction: the application descriptor, a JSON object or a string
  (see `descriptor_from_text`).

Command (51) is not scene input: Unreal runs it as a console command; the stub
only reports it (stub.py). Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from typing import Any

from regional_stack.renderer.epic_protocol import INT16_MAX, UINT16_MAX, Message

DEG_PER_KEY = 15.0
ZOOM_PER_NOTCH = 1.1
WHEEL_NOTCH = 120
KEY_LEFT, KEY_UP, KEY_RIGHT, KEY_DOWN = 37, 38, 39, 40
KEY_D, KEY_F = 68, 70
GAMEPAD_LEFT_X = 1  # Unreal's mapping: axis 1 is Gamepad_LeftX
DEG_PER_STICK = 10.0

# A string descriptor's one argument goes to this field, per action.
_TEXT_ARGUMENT = {
    "orbit": ("dx_deg", float),
    "zoom": ("factor", float),
    "set_paint": ("color", str),
    "set_wheels": ("style", str),
}


def descriptor_from_text(text: str) -> dict[str, Any]:
    """A UIInteraction descriptor from its text.

    Epic's `emitUIInteraction(x)` sends `JSON.stringify(x)`: an object arrives
    as a JSON object, a string as a JSON string. Unreal hands either to the
    app's OnInputEvent as text; the stub reads a JSON object as its descriptor
    and a string as an action with at most one argument: "toggle_frunk",
    "orbit 30", "zoom 1.2", "set_paint #1e6fd9", "set_wheels sport".
    """
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError:
        value = text  # a frontend that sends plain text, not JSON
    if isinstance(value, str):
        try:
            inner = json.loads(value)  # an object that was stringified twice
        except json.JSONDecodeError:
            inner = None
        value = inner if isinstance(inner, dict) else _action(value)
    if not isinstance(value, dict):
        raise ValueError(f"descriptor must be an object or a string, got {type(value).__name__}")
    return value


def _action(text: str) -> dict[str, Any]:
    words = text.split()
    if not words:
        raise ValueError("empty descriptor")
    kind, args = words[0], words[1:]
    if kind not in _TEXT_ARGUMENT:
        if args:
            raise ValueError(f"{kind} takes no argument")
        return {"type": kind}
    if len(args) != 1:
        raise ValueError(f"{kind} takes one argument")
    field, convert = _TEXT_ARGUMENT[kind]
    return {"type": kind, field: convert(args[0])}


class Controls:
    """Pointer and key state across messages: which buttons are down, where each finger is."""

    def __init__(self) -> None:
        self.buttons: set[int] = set()
        self.touches: dict[int, int] = {}  # touch index -> last x (0..65535)

    def apply(self, msg: Message) -> dict[str, Any] | None:
        name, f = msg.name, msg.fields
        if name == "UIInteraction":
            return descriptor_from_text(str(f[0]))
        if name == "MouseDown":
            self.buttons.add(int(f[0]))
        elif name == "MouseUp":
            self.buttons.discard(int(f[0]))
        elif name == "MouseLeave":
            self.buttons.clear()  # a release outside the player never arrives
        elif name == "MouseMove" and self.buttons and f[2]:
            return {"type": "orbit", "dx_deg": float(f[2]) / INT16_MAX * 360.0}
        elif name == "MouseWheel" and f[0]:
            return {"type": "zoom", "factor": ZOOM_PER_NOTCH ** (float(f[0]) / WHEEL_NOTCH)}
        elif name == "KeyDown":
            return _key(int(f[0]), repeat=bool(f[1]))
        elif name == "TouchStart":
            self.touches[int(f[3])] = int(f[1])
        elif name == "TouchMove":
            index, x = int(f[3]), int(f[1])
            last = self.touches.get(index, x)
            self.touches[index] = x
            if len(self.touches) == 1 and x != last:
                return {"type": "orbit", "dx_deg": (x - last) / UINT16_MAX * 360.0}
        elif name == "TouchEnd":
            self.touches.pop(int(f[3]), None)
        elif name == "GamepadAnalog" and int(f[1]) == GAMEPAD_LEFT_X and abs(float(f[2])) > 0.1:
            return {"type": "orbit", "dx_deg": float(f[2]) * DEG_PER_STICK}
        return None


def _key(code: int, *, repeat: bool) -> dict[str, Any] | None:
    if code in (KEY_LEFT, KEY_RIGHT):
        return {"type": "orbit", "dx_deg": DEG_PER_KEY * (1 if code == KEY_RIGHT else -1)}
    if code in (KEY_UP, KEY_DOWN):
        return {"type": "zoom", "factor": ZOOM_PER_NOTCH if code == KEY_UP else 1 / ZOOM_PER_NOTCH}
    if repeat:
        return None  # a held key toggles once
    if code == KEY_F:
        return {"type": "toggle_frunk"}
    if code == KEY_D:
        return {"type": "toggle_doors"}
    return None


# Unreal's default Command handlers (FPixelStreamingInputHandler::PopulateDefaultCommandHandlers):
# the first key of these found in the descriptor picks the handler.
COMMAND_KEYS = ("ConsoleCommand", "Resolution.Width", "Stat.FPS")


def parse_command(text: str) -> tuple[str, str] | None:
    """(handler, value) for a Command (51) descriptor, None when no handler matches.

    As in Unreal, a descriptor is a JSON object such as
    `{"ConsoleCommand": "stat fps"}` (`emitConsoleCommand`) or
    `{"Resolution.Width": 1280, "Resolution.Height": 720}`.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    for key in COMMAND_KEYS:
        if key in value:
            return key, str(value[key])
    return None
