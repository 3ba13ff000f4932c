"""Epic's standard input moves the stub's car; descriptors as objects and strings; reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regional_stack.renderer import activity, controls, scene
from regional_stack.renderer import epic_protocol as ep

RECORDED = {
    (r["name"], json.dumps(r["fields"])): bytes.fromhex(r["hex"])
    for r in json.loads((Path(__file__).parent / "epic_messages.json").read_text())["messages"]
}


def recorded(name: str, *fields: object) -> ep.Message:
    msg = ep.decode(RECORDED[(name, json.dumps(list(fields)))])
    assert msg is not None
    return msg


def run(c: controls.Controls, *msgs: ep.Message) -> scene.SceneState:
    state = scene.SceneState()
    for msg in msgs:
        descriptor = c.apply(msg)
        if descriptor is not None:
            state = scene.apply_input(state, descriptor)
    return state


def test_mouse_drag_orbits_and_hover_does_not() -> None:
    c = controls.Controls()
    hover = run(c, recorded("MouseMove", 33000, 30000, 1638, -20))
    assert hover == scene.SceneState()
    dragged = run(
        c,
        recorded("MouseDown", 0, 32768, 30000),
        recorded("MouseMove", 33000, 30000, 1638, -20),
        recorded("MouseUp", 0, 33000, 30000),
        recorded("MouseMove", 33000, 30000, 1638, -20),  # released: no more orbit
    )
    assert dragged.orbit_deg == pytest.approx(20.0 + 1638 / 32767 * 360)
    assert scene.render(dragged, 320, 180).tobytes() != scene.render(hover, 320, 180).tobytes()


def test_mouse_leave_releases_the_buttons() -> None:
    c = controls.Controls()
    c.apply(ep.Message("MouseDown", (0, 1, 1)))
    c.apply(ep.Message("MouseLeave"))
    assert c.apply(ep.Message("MouseMove", (1, 1, 500, 0))) is None


def test_wheel_zooms() -> None:
    state = run(controls.Controls(), recorded("MouseWheel", -120, 32768, 32768))
    assert state.zoom == pytest.approx(1 / 1.1)


@pytest.mark.parametrize(
    ("code", "field", "value"),
    [
        (39, "orbit_deg", 35.0),
        (37, "orbit_deg", 5.0),
        (38, "zoom", 1.1),
        (70, "frunk_open", True),
        (68, "doors_open", True),
    ],
)
def test_keys(code: int, field: str, value: object) -> None:
    state = run(controls.Controls(), ep.Message("KeyDown", (code, 0)))
    assert getattr(state, field) == pytest.approx(value)


def test_held_toggle_key_toggles_once_and_other_keys_do_nothing() -> None:
    c = controls.Controls()
    state = run(c, ep.Message("KeyDown", (70, 0)), ep.Message("KeyDown", (70, 1)))
    assert state.frunk_open
    assert c.apply(recorded("KeyUp", 39)) is None
    assert c.apply(recorded("KeyPress", 102)) is None


def test_one_finger_drag_orbits() -> None:
    state = run(
        controls.Controls(),
        recorded("TouchStart", 1, 16384, 40000, 0, 255, 1),
        recorded("TouchMove", 1, 20000, 40000, 0, 255, 1),
        recorded("TouchEnd", 1, 20000, 40000, 0, 0, 1),
    )
    assert state.orbit_deg == pytest.approx(20.0 + (20000 - 16384) / 65535 * 360)


def test_gamepad_stick_orbits() -> None:
    state = run(controls.Controls(), recorded("GamepadAnalog", 0, 1, 0.5))
    assert state.orbit_deg == pytest.approx(25.0)


def test_ui_interaction_with_a_json_object() -> None:
    msg = recorded("UIInteraction", '{"type":"set_paint","color":"#1e6fd9","seq":7}')
    state = run(controls.Controls(), msg)
    assert state.paint == (0x1E, 0x6F, 0xD9)
    assert state.last_seq == 7


def test_ui_interaction_with_a_string_descriptor() -> None:
    # emitUIInteraction("toggle_frunk") sends JSON.stringify("toggle_frunk").
    state = run(controls.Controls(), recorded("UIInteraction", '"toggle_frunk"'))
    assert state.frunk_open


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('"orbit 30"', {"type": "orbit", "dx_deg": 30.0}),
        ("zoom 1.2", {"type": "zoom", "factor": 1.2}),
        ('"set_paint #1e6fd9"', {"type": "set_paint", "color": "#1e6fd9"}),
        ('"set_wheels sport"', {"type": "set_wheels", "style": "sport"}),
        (json.dumps(json.dumps({"type": "toggle_doors"})), {"type": "toggle_doors"}),
    ],
)
def test_string_descriptors(text: str, want: dict[str, object]) -> None:
    assert controls.descriptor_from_text(text) == want


@pytest.mark.parametrize(
    "text", ["[1, 2]", "42", '""', '"orbit"', '"toggle_frunk now"', '"zoom x"']
)
def test_bad_descriptors_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        controls.descriptor_from_text(text)


def test_command_is_not_scene_input() -> None:
    c = controls.Controls()
    msg = recorded("Command", '{"ConsoleCommand":"stat fps"}')
    assert controls.parse_command(str(msg.fields[0])) == ("ConsoleCommand", "stat fps")
    assert controls.parse_command('{"Resolution.Width": 1280, "Resolution.Height": 720}') == (
        "Resolution.Width",
        "1280",
    )
    assert controls.parse_command('{"type": "toggle_frunk"}') is None
    assert controls.parse_command("not json") is None
    # The stub routes Command away from Controls; fed here anyway, it changes nothing.
    assert c.apply(msg) is None


def test_input_reports_are_sent_at_most_once_a_period() -> None:
    r = activity.InputReports(period_s=1.0)
    assert r.record(10.0) == (1, None)  # the first input is reported at once
    assert r.record(10.2) == (None, pytest.approx(0.8))  # then a timer is armed
    assert r.record(10.5) == (None, None)  # counted under the armed timer
    assert r.flush(11.0) == 2
    assert r.flush(12.0) is None  # nothing new
    assert r.record(12.5) == (1, None)  # a quiet second later: at once again
    assert activity.message(3) == {"type": "streamfleetInput", "count": 3}
