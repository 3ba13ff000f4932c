"""The control plane's event loop is a setting: uvloop where installed (the server
extra brings it), asyncio on request; the server runs on the loop it names."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import ValidationError

from control_plane.settings import ControlPlaneSettings
from streamfleet.edge import loop_factory


def test_uvloop_is_the_default_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMFLEET_EVENT_LOOP", raising=False)
    assert ControlPlaneSettings().event_loop == "uvloop"


def test_the_environment_chooses_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMFLEET_EVENT_LOOP", "asyncio")
    settings = ControlPlaneSettings()
    assert settings.event_loop == "asyncio"
    assert settings.to_env()["STREAMFLEET_EVENT_LOOP"] == "asyncio"  # reaches a child process


def test_an_unknown_loop_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        ControlPlaneSettings(event_loop="trio")  # type: ignore[arg-type]
    assert err.value.errors()[0]["loc"] == ("event_loop",)


def test_uvloop_when_chosen_but_not_installed_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    with pytest.raises(ValidationError) as err:
        ControlPlaneSettings(event_loop="uvloop")
    assert err.value.errors()[0]["loc"] == ("event_loop",)
    assert "not installed" in str(err.value)


def test_the_server_runs_on_the_loop_it_names() -> None:
    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    for name, expected in (("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)):
        with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
            got = runner.run(loop_type())
        assert issubclass(got, expected), (name, got)
    with pytest.raises(ValueError, match="unknown event loop"):
        loop_factory("trio")
