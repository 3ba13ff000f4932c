"""The agent's retry policy, its config options and its dropped-streamer rule, with fakes."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import SecretStr

from regional_stack.agent import ice, loops
from regional_stack.agent.context import Agent
from regional_stack.agent.control_plane_client import ControlPlaneError
from regional_stack.agent.retry import EVENT_ATTEMPTS, control_plane_retry
from regional_stack.agent.settings import AgentSettings
from regional_stack.signalling import closing
from streamfleet import turn
from streamfleet.tokens import StreamClaims

SID = "0123456789abcdef0123456789abcdef-0123456789abcdef"


class Flaky:
    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.statuses:
            raise ControlPlaneError(self.statuses.pop(0), "nope")
        return "ok"


async def run(policy: Any, call: Flaky) -> str:
    result = ""
    async for attempt in policy:
        with attempt:
            result = await call()
    return result


def policy(**kw: Any) -> Any:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    p = control_plane_retry(sleep=no_sleep, **kw)
    p.waits = waits  # type: ignore[attr-defined]
    return p


async def test_retryable_failures_are_retried_with_growing_waits() -> None:
    call, p = Flaky(0, 503, 429), policy()
    assert await run(p, call) == "ok" and call.calls == 4
    assert len(p.waits) == 3 and p.waits[0] < p.waits[2] <= 5.0 + 0.1


async def test_a_refusal_is_not_retried() -> None:
    call = Flaky(403)
    with pytest.raises(ControlPlaneError) as info:
        await run(policy(), call)
    assert info.value.status == 403 and call.calls == 1


async def test_bounded_unless_forever() -> None:
    call = Flaky(*[503] * 20)
    with pytest.raises(ControlPlaneError):
        await run(policy(), call)
    assert call.calls == EVENT_ATTEMPTS
    # Registration retries everything (a wrong secret too) until it works.
    call = Flaky(*[403] * 20)
    assert await run(policy(forever=True), call) == "ok" and call.calls == 21


def settings(**kw: Any) -> AgentSettings:
    base: dict[str, Any] = {
        "instance_id": "i-abc",
        "turn_uris": ["turn:127.0.0.1:3478?transport=udp"],
        "turn_secret": SecretStr("s3cret"),
        "ice_transport_policy": "relay",
    }
    return AgentSettings(**{**base, **kw})


def test_player_options_are_the_sessions_turn_credentials() -> None:
    claims = StreamClaims(SID, "i-abc", "127.0.0.1", 3, 2_000_000_000)
    options = ice.player_options(settings(), claims)
    assert options == {
        "iceTransportPolicy": "relay",
        "iceServers": turn.ice_servers(
            ["turn:127.0.0.1:3478?transport=udp"], "s3cret", SID, 2_000_000_000
        ),
    }
    assert options["iceServers"][0]["username"] == f"2000000000:{SID}"


def test_renderer_options_use_its_own_name_and_a_day() -> None:
    options = ice.streamer_options(settings(), 1000.0)
    assert options["iceServers"][0]["username"] == f"{1000 + 24 * 3600}:i-abc"
    assert ice.streamer_options(settings(turn_uris=[]), 1000.0) == {"iceTransportPolicy": "relay"}


class FakeSupervisor:
    def __init__(self, exits: bool) -> None:
        self.exits = exits
        self.resetting = False

    async def wait_exit(self, timeout_s: float) -> bool:
        return self.exits


class FakeHub:
    def __init__(self) -> None:
        self.closes: list[closing.Close] = []

    async def disconnect_player(self, close: closing.Close) -> None:
        self.closes.append(close)


@pytest.mark.parametrize(("exits", "expected"), [(False, [closing.streamer_gone()]), (True, [])])
async def test_dropped_streamer_socket(exits: bool, expected: list[closing.Close]) -> None:
    """A live renderer that lost its socket: close 1012 (the library reconnects).
    A dead one: nothing here; the crash path closes final (instance_lost)."""
    hub = FakeHub()
    agent = cast(Agent, SimpleNamespace(supervisor=FakeSupervisor(exits), hub=hub))
    started = time.monotonic()
    await loops.streamer_gone(agent)
    assert hub.closes == expected and time.monotonic() - started < 1
