from __future__ import annotations

import numpy as np
import pytest

from regional_stack.renderer import input_protocol, marker, scene


@pytest.mark.parametrize("seq", [0, 1, 2, 255, 256, 4097, 0x7FFF, 0xFFFF])
def test_marker_round_trip(seq: int) -> None:
    frame = np.full((180, 320, 3), 128, dtype=np.uint8)
    marker.draw(frame, seq)
    assert marker.decode(frame) == seq


def test_marker_survives_noise_and_blur() -> None:
    rng = np.random.default_rng(7)
    frame = np.zeros((180, 320, 3), dtype=np.uint8)
    marker.draw(frame, 0xA5C3)
    noisy = frame.astype(np.int16) + rng.integers(-40, 40, frame.shape)
    # A 3x3 box blur, roughly what a codec does to block edges.
    padded = np.pad(noisy, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blurred = sum(padded[dy : dy + 180, dx : dx + 320] for dy in range(3) for dx in range(3)) / 9
    assert marker.decode(np.clip(blurred, 0, 255).astype(np.uint8)) == 0xA5C3


def test_marker_absent_is_none() -> None:
    assert marker.decode(np.full((180, 320, 3), 128, dtype=np.uint8)) is None
    assert marker.decode(np.zeros((10, 10, 3), dtype=np.uint8)) is None


def test_ui_interaction_matches_epic_layout() -> None:
    data = input_protocol.encode_ui_interaction({"type": "zoom", "seq": 3})
    text = '{"type":"zoom","seq":3}'
    assert data[0] == 50
    assert int.from_bytes(data[1:3], "little") == len(text)
    assert data[3:] == text.encode("utf-16-le")
    assert input_protocol.decode_message(data) == (50, {"type": "zoom", "seq": 3})


@pytest.mark.parametrize(
    "data", [b"", b"\x32\x05", b"\x32\x02\x00{\x00", b"\x32\x01\x00[\x00", b"\x32\x01\x00\x00\xd8"]
)
def test_bad_ui_interaction_is_refused(data: bytes) -> None:
    with pytest.raises(input_protocol.InputDecodeError):
        input_protocol.decode_message(data)


def test_other_input_kinds_are_passed_through() -> None:
    assert input_protocol.decode_message(b"\x4a\x00\x00") == (74, None)  # MouseMove


def test_inputs_change_the_scene_and_the_marker() -> None:
    s0 = scene.SceneState()
    s1 = scene.apply_input(s0, {"type": "set_paint", "color": "#0000ff", "seq": 9})
    x, y = scene.body_probe(s1, 320, 180)
    frame = scene.render(s1, 320, 180)
    assert tuple(frame[y, x]) == (0, 0, 255)
    assert marker.decode(frame) == 9
    s2 = scene.apply_input(s1, {"type": "toggle_frunk", "seq": 10})
    assert s2.frunk_open and not (scene.render(s2, 320, 180) == frame).all()
    s3 = scene.apply_input(s2, {"type": "orbit", "dx_deg": 400, "seq": 11})
    assert s3.orbit_deg == pytest.approx((s0.orbit_deg + 400) % 360)
    s4 = scene.apply_input(s3, {"type": "zoom", "factor": 100, "seq": 12})
    assert s4.zoom == scene.ZOOM_MAX


@pytest.mark.parametrize(
    "descriptor",
    [
        {"type": "set_paint", "color": "blue"},
        {"type": "warp"},
        {"type": "zoom"},
        {"type": "orbit", "dx_deg": 1, "seq": 70000},
        {"type": "set_wheels", "style": "square"},
    ],
)
def test_bad_inputs_are_rejected(descriptor: dict[str, object]) -> None:
    with pytest.raises(scene.InputRejected):
        scene.apply_input(scene.SceneState(), descriptor)


@pytest.mark.parametrize("orbit", [0, 45, 90, 135, 180, 225, 270, 315])
@pytest.mark.parametrize("zoom", [scene.ZOOM_MIN, 1.0, scene.ZOOM_MAX])
@pytest.mark.parametrize("options", [False, True])
def test_body_probe_is_paint_in_every_view(orbit: int, zoom: float, options: bool) -> None:
    state = scene.SceneState(
        paint=(1, 2, 3), orbit_deg=orbit, zoom=zoom, frunk_open=options, doors_open=options
    )
    x, y = scene.body_probe(state, 320, 180)
    assert tuple(scene.render(state, 320, 180)[y, x]) == (1, 2, 3)


def test_configuration_sets_the_initial_scene() -> None:
    state = scene.from_configuration({"paint": "#112233", "wheels": "sport", "doors_open": True})
    assert state.paint == (0x11, 0x22, 0x33) and state.wheels == "sport" and state.doors_open
    configured = scene.apply_input(state, {"type": "configure", "configuration": {}, "seq": 2})
    assert configured.paint == scene.SceneState().paint and configured.last_seq == 2
