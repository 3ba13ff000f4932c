"""The configurator scene the stub renders: a car, its options, and the camera.

Pure: `apply_input` folds one input descriptor into a new state, `render`
draws a state into an RGB array. The drawing is deliberately simple but
recognisable (body, cabin with windows, two wheels, frunk and door panels,
floor and sky) and every option changes pixels a test can find:
`body_probe` names a pixel that is car paint in every state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from regional_stack.renderer import marker

_HEX = re.compile(r"#?([0-9a-fA-F]{6})")
WHEEL_STYLES = ("classic", "sport", "aero")
ZOOM_MIN, ZOOM_MAX = 0.5, 1.6


@dataclass(frozen=True, slots=True)
class SceneState:
    paint: tuple[int, int, int] = (200, 30, 30)
    wheels: str = "classic"
    orbit_deg: float = 20.0
    zoom: float = 1.0
    frunk_open: bool = False
    doors_open: bool = False
    last_seq: int = 0


class InputRejected(ValueError):
    """An input descriptor the scene does not understand; the frame state is unchanged."""


def parse_color(text: str) -> tuple[int, int, int]:
    m = _HEX.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InputRejected(f"colour must be #rrggbb, got {text!r}")
    v = int(m.group(1), 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def from_configuration(config: dict[str, Any]) -> SceneState:
    """The initial scene from a session configuration (unknown keys are ignored)."""
    state = SceneState()
    if "paint" in config:
        state = replace(state, paint=parse_color(str(config["paint"])))
    if config.get("wheels") in WHEEL_STYLES:
        state = replace(state, wheels=str(config["wheels"]))
    if "orbit_deg" in config:
        state = replace(state, orbit_deg=float(config["orbit_deg"]) % 360.0)
    if "zoom" in config:
        state = replace(state, zoom=min(ZOOM_MAX, max(ZOOM_MIN, float(config["zoom"]))))
    state = replace(
        state,
        frunk_open=bool(config.get("frunk_open", False)),
        doors_open=bool(config.get("doors_open", False)),
    )
    return state


def apply_input(state: SceneState, descriptor: dict[str, Any]) -> SceneState:
    kind = descriptor.get("type")
    seq = descriptor.get("seq", state.last_seq)
    if not isinstance(seq, int) or not 0 <= seq <= 0xFFFF:
        raise InputRejected("seq must be an integer 0..65535")
    try:
        if kind == "orbit":
            new = replace(state, orbit_deg=(state.orbit_deg + float(descriptor["dx_deg"])) % 360)
        elif kind == "zoom":
            z = state.zoom * float(descriptor["factor"])
            new = replace(state, zoom=min(ZOOM_MAX, max(ZOOM_MIN, z)))
        elif kind == "set_paint":
            new = replace(state, paint=parse_color(descriptor["color"]))
        elif kind == "set_wheels":
            if descriptor.get("style") not in WHEEL_STYLES:
                raise InputRejected(f"wheel style must be one of {WHEEL_STYLES}")
            new = replace(state, wheels=str(descriptor["style"]))
        elif kind == "toggle_frunk":
            new = replace(state, frunk_open=not state.frunk_open)
        elif kind == "toggle_doors":
            new = replace(state, doors_open=not state.doors_open)
        elif kind == "configure":
            # The frontend sends the session's whole configuration once connected.
            config = descriptor["configuration"]
            if not isinstance(config, dict):
                raise InputRejected("configuration must be an object")
            new = replace(from_configuration(config), orbit_deg=state.orbit_deg, zoom=state.zoom)
        elif kind == "ping":
            new = state  # only moves the marker: a pure latency probe
        else:
            raise InputRejected(f"unknown input type {kind!r}")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InputRejected):
            raise
        raise InputRejected(f"bad {kind} input: {exc}") from exc
    return replace(new, last_seq=seq)


@dataclass(frozen=True, slots=True)
class _Geometry:
    cx: float
    ground: float
    length: float
    body_h: float
    wheel_r: float
    facing: int  # +1: the front points right


def _geometry(state: SceneState, width: int, height: int) -> _Geometry:
    rad = math.radians(state.orbit_deg)
    # Seen from the side at 0/180 deg, nose-on at 90/270: the silhouette narrows.
    length = width * 0.62 * state.zoom * (0.38 + 0.62 * abs(math.cos(rad)))
    return _Geometry(
        cx=width / 2,
        ground=height * 0.80,
        length=length,
        body_h=height * 0.17 * state.zoom,
        wheel_r=height * 0.075 * state.zoom,
        facing=1 if math.cos(rad) >= 0 else -1,
    )


def body_probe(state: SceneState, width: int, height: int) -> tuple[int, int]:
    """(x, y) of a pixel that is body paint whatever the options."""
    g = _geometry(state, width, height)
    body_bottom = g.ground - g.wheel_r * 0.6
    y = body_bottom - g.body_h * 0.45
    x = g.cx - g.facing * g.length * 0.12
    return int(x), int(y)


@lru_cache(maxsize=8)
def _background(width: int, height: int) -> np.ndarray:
    frame = np.empty((height, width, 3), dtype=np.uint8)
    horizon = int(height * 0.62)
    t = np.linspace(0.0, 1.0, horizon)[:, None]
    frame[:horizon] = (np.array([150, 185, 225]) * (1 - t) + np.array([225, 232, 240]) * t)[
        :, None, :
    ].astype(np.uint8)
    frame[horizon:] = (92, 96, 104)
    return frame


@lru_cache(maxsize=32)
def _render_scene(state: SceneState, width: int, height: int) -> np.ndarray:
    frame = _background(width, height).copy()
    g = _geometry(state, width, height)
    yy, xx = np.mgrid[0:height, 0:width]
    paint = np.array(state.paint, dtype=np.uint8)
    dark = (np.array(state.paint) * 0.55).astype(np.uint8)
    half = g.length / 2
    body_bottom = g.ground - g.wheel_r * 0.6
    body_top = body_bottom - g.body_h
    # Shadow on the floor.
    shadow = ((xx - g.cx) / (half * 1.05)) ** 2 + ((yy - g.ground) / (g.wheel_r * 0.5)) ** 2 < 1
    frame[shadow] = (55, 58, 62)
    # Cabin: a trapezoid on top of the body, shifted towards the rear.
    cab_h = g.body_h * 0.8
    cab_cx = g.cx - g.facing * g.length * 0.05
    frac = np.clip((body_top - yy) / cab_h, 0, 1)
    cab_half = half * (0.55 - 0.2 * frac)
    cabin = (yy < body_top) & (yy >= body_top - cab_h) & (np.abs(xx - cab_cx) < cab_half)
    frame[cabin] = paint
    window = cabin & (yy > body_top - cab_h * 0.8) & (np.abs(xx - cab_cx) < cab_half - 3)
    frame[window] = (40, 60, 80)
    # Body with rounded ends.
    body = (yy >= body_top) & (yy < body_bottom) & (np.abs(xx - g.cx) < half)
    ends = ((np.abs(xx - g.cx) - (half - g.body_h / 2)) / (g.body_h / 2)) ** 2 + (
        (yy - (body_top + body_bottom) / 2) / (g.body_h / 2)
    ) ** 2 < 1
    body = body & ((np.abs(xx - g.cx) < half - g.body_h / 2) | ends)
    frame[body] = paint
    # Headlight at the front.
    front_x = g.cx + g.facing * (half - g.body_h * 0.35)
    light = (np.abs(xx - front_x) < max(2, g.length * 0.03)) & (
        np.abs(yy - (body_top + g.body_h * 0.3)) < max(2, g.body_h * 0.12)
    )
    frame[light] = (255, 240, 170)
    if state.frunk_open:
        # The frunk lid swings up above the front of the body.
        lid_x0 = g.cx + g.facing * half * 0.45
        lid_x1 = g.cx + g.facing * half * 0.95
        lo, hi = min(lid_x0, lid_x1), max(lid_x0, lid_x1)
        lid = (xx >= lo) & (xx <= hi) & (yy < body_top) & (yy >= body_top - g.body_h * 0.9)
        frame[lid] = dark
        frame[(xx >= lo) & (xx <= hi) & (yy >= body_top) & (yy < body_top + 3)] = (20, 20, 20)
    if state.doors_open:
        # The open door swings out towards the camera: drawn below the sill.
        door_x = g.cx + g.facing * g.length * 0.08
        door = (
            (np.abs(xx - door_x) < g.length * 0.13)
            & (yy >= body_bottom - 2)
            & (yy < body_bottom + g.body_h * 0.55)
        )
        frame[door] = dark
        gap = cabin & (np.abs(xx - door_x) < g.length * 0.1)
        frame[gap] = (15, 15, 18)
    rim = {"classic": (200, 200, 205), "sport": (40, 40, 45), "aero": (235, 235, 240)}
    for sx in (-1, 1):
        wx = g.cx + sx * half * 0.62
        d2 = (xx - wx) ** 2 + (yy - g.ground + g.wheel_r) ** 2
        frame[d2 < g.wheel_r**2] = (22, 22, 24)
        frame[d2 < (g.wheel_r * 0.55) ** 2] = rim[state.wheels]
        if state.wheels == "sport":
            spokes = (np.abs(xx - wx) < 1.5) | (np.abs(yy - g.ground + g.wheel_r) < 1.5)
            frame[(d2 < (g.wheel_r * 0.55) ** 2) & spokes] = (200, 30, 30)
    frame.setflags(write=False)
    return frame


def render(state: SceneState, width: int, height: int) -> np.ndarray:
    """One RGB frame: the scene for `state` with its input-sequence marker."""
    frame = _render_scene(replace(state, last_seq=0), width, height).copy()
    marker.draw(frame, state.last_seq)
    return frame
