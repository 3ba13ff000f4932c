"""A dead media path is noticed in seconds and either recovers or ends the session
(issue 14): a real coturn of the test's own, killed with kill -9, a real agent with
the renderer stub, a real aiortc player relayed through that coturn.

The player behaves as Epic's library does: no reaction to ICE or media trouble
of its own; after a close other than 1001 it reconnects (new signalling socket,
new `config` with fresh TURN credentials, new offer from the renderer).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regional_stack.coturn.local import start_coturn
from regional_stack.renderer import media_watch
from simulators.player import Player, PlayerError, SignallingRefused, StreamEnded
from streamfleet.localproc import ManagedProcess, free_port
from tests.integration.agent.conftest import (
    TURN_SECRET,
    AgentFactory,
    AgentProcess,
    ControlPlane,
    ControlPlaneFactory,
    Session,
)

STALL_S = media_watch.DEFAULT_STALL_S
# From the kill to the player's close: the stall threshold, a receiver-report
# interval (≤ 1.5 s), a check period, and slack for a loaded 2-core machine.
DETECT_WITHIN_S = STALL_S + 5.0


class OwnCoturn:
    """A coturn only this test uses, so killing it harms no other test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        # A relay range away from the session coturn's (40000 + pid % 150 * 100).
        self.min_port = 55000 + (os.getpid() % 40) * 100
        self.process: ManagedProcess | None = None

    @property
    def uris(self) -> list[str]:
        return [f"turn:127.0.0.1:{self.port}?transport=udp"]

    def start(self) -> None:
        self.process = start_coturn(
            port=self.port, secret=TURN_SECRET, workdir=self.workdir,
            min_port=self.min_port, max_port=self.min_port + 99,
        )  # fmt: skip

    def kill9(self) -> None:
        assert self.process is not None and self.process.popen is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.popen.wait(timeout=5)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def own_coturn(tmp_path: Path) -> Iterator[OwnCoturn]:
    turn = OwnCoturn(tmp_path / "own-coturn")
    turn.start()
    try:
        yield turn
    finally:
        turn.stop()


async def streaming(
    agent: AgentProcess, session: Session, media_stall_s: float | None = None
) -> Player:
    """A relay-only player through the agent's TURN (ICE servers from `config`)."""
    player = agent.player(session, ice_from_config=True)
    player.media_stall_s = media_stall_s
    await player.connect()
    try:
        await player.wait_first_frame(within_s=15)
    except BaseException:
        await player.close()
        raise
    return player


async def reconnect_like_epic(agent: AgentProcess, session: Session, tries: int = 5) -> Player:
    """Epic's library after a non-final close: reconnect a second apart, same token."""
    last: Exception | None = None
    for _ in range(tries):
        await asyncio.sleep(1.0)
        try:
            return await streaming(agent, session)
        except (PlayerError, TimeoutError) as exc:
            last = exc
    raise AssertionError(f"no stream after {tries} reconnects: {last}")


async def start_stack(
    start_control_plane: ControlPlaneFactory,
    start_agent: AgentFactory,
    turn: OwnCoturn,
    *,
    reconnect_window_s: float,
    player_stall_s: float | None = None,
    **agent_settings: str,
) -> tuple[AgentProcess, Session, Player, ControlPlane]:
    cp = await start_control_plane(reconnect_window_s=reconnect_window_s)
    agent = await start_agent(cp, turn_uris=json.dumps(turn.uris), **agent_settings)
    session = await cp.create_session("client-media")
    player = await streaming(agent, session, player_stall_s)
    await cp.wait_session(session, lambda v: v["state"] == "connected")
    await cp.wait_instance(agent.instance_id, "streaming")
    return agent, session, player, cp


async def test_coturn_kill9_and_restart_stream_resumes(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory, own_coturn: OwnCoturn
) -> None:
    agent, session, player, cp = await start_stack(
        start_control_plane, start_agent, own_coturn, reconnect_window_s=30
    )
    try:
        killed = time.monotonic()
        own_coturn.kill9()
        own_coturn.start()  # as a supervisor would, at once
        failure = await player.wait_closed(DETECT_WITHIN_S)
        detected = time.monotonic() - killed
        assert isinstance(failure, StreamEnded), failure
        assert failure.code == 1011 and not failure.final, failure
        assert failure.reason.startswith("media stalled"), failure.reason
        assert detected < DETECT_WITHIN_S
        await player.close()
        player = await reconnect_like_epic(agent, session)
        frames = player.frames
        await player.wait_frame(lambda _: player.frames >= frames + 10, within_s=10)
        # Input still reaches the same scene.
        seq = await player.send_input({"type": "set_paint", "color": "#1040e0"})
        await player.wait_for_seq(seq, within_s=5)
        view = await cp.get_session(session)
        assert view["state"] == "connected", view
        row = await cp.instance(agent.instance_id)
        assert row is not None and row["state"] == "streaming", row
        assert row["session_id"] == session["session_id"], row
        health = await agent.health()
        assert health["player_connected"] and health["renderer_crashes"] == 0, health
    finally:
        await player.close()


async def test_coturn_kept_dead_session_ends_disconnected(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory, own_coturn: OwnCoturn
) -> None:
    """Epic's library retries for ever while TURN is down (each socket it opens resets
    its attempt count; each is closed 1011 "no relay candidate"): the reconnect
    window runs from the stall all the same, and the session ends `disconnected`."""
    window_s = 8.0
    agent, session, player, cp = await start_stack(
        start_control_plane, start_agent, own_coturn, reconnect_window_s=window_s
    )
    players = [player]
    try:
        killed = time.monotonic()
        own_coturn.kill9()
        failure = await player.wait_closed(DETECT_WITHIN_S)
        assert isinstance(failure, StreamEnded) and not failure.final, failure
        assert failure.reason.startswith("media stalled"), failure.reason
        retries: list[str] = []
        for _ in range(20):  # bounded; the window ends long before
            await asyncio.sleep(1.0)
            retry = agent.player(session, ice_from_config=True)
            players.append(retry)
            try:
                await retry.connect()
            except SignallingRefused as exc:
                retries.append(f"refused {exc.status}")  # the session is over
                break
            again = await retry.wait_closed(15)
            retries.append(str(again))
            assert isinstance(again, StreamEnded), again
            if again.final:
                break
        assert len(retries) >= 2, retries  # at least one retry inside the window
        reason = await cp.wait_ended(session, within_s=10)
        assert reason == "disconnected", retries
        # From the stall, not from the last retry: ~detection + window.
        assert time.monotonic() - killed < DETECT_WITHIN_S + window_s + 8, retries
        await cp.wait_instance(agent.instance_id, "ready", within_s=20)
    finally:
        # Back first: a peer connection's close waits for TURN to delete its
        # allocations, ~30 s of retransmissions each with no TURN server.
        own_coturn.start()
        for p in players:
            await p.close()


async def test_media_watch_off_leaves_a_frozen_stream(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory, own_coturn: OwnCoturn
) -> None:
    """The control: with the renderer's media watch off, the same kill leaves the
    session `connected` and the player's socket open with no frames, which is the
    bug the watch fixes (so the tests above pass because of it)."""
    from regional_stack.agent.settings import DEFAULT_RENDERER_COMMAND

    agent, session, player, cp = await start_stack(
        start_control_plane, start_agent, own_coturn, reconnect_window_s=3,
        renderer_command=DEFAULT_RENDERER_COMMAND + " --media-stall-s 0",
    )  # fmt: skip
    try:
        own_coturn.kill9()
        own_coturn.start()
        frames = player.frames
        with pytest.raises(TimeoutError):
            await player.wait_closed(DETECT_WITHIN_S)
        assert player.frames - frames < 5, "frames kept flowing: this control proves nothing"
        view = await cp.get_session(session)
        assert view["state"] == "connected", view
        assert (await agent.health())["player_connected"]
    finally:
        await player.close()


async def test_player_side_watch_resubscribes_through_the_restarted_coturn(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory, own_coturn: OwnCoturn
) -> None:
    """A renderer without a media watch (an Unreal app as shipped): a player that
    watches its own frames subscribes again on the same socket, the agent relays it
    as a new `playerConnected`, and the fresh offer streams through the new coturn."""
    from regional_stack.agent.settings import DEFAULT_RENDERER_COMMAND

    agent, session, player, cp = await start_stack(
        start_control_plane, start_agent, own_coturn, reconnect_window_s=30,
        player_stall_s=3.0, renderer_command=DEFAULT_RENDERER_COMMAND + " --media-stall-s 0",
    )  # fmt: skip
    try:
        own_coturn.kill9()
        own_coturn.start()
        frames = player.frames
        await player.wait_frame(lambda _: player.frames >= frames + 10, within_s=20)
        assert player.failure is None and player.resubscribes >= 1, player.failure
        seq = await player.send_input({"type": "toggle_doors"})
        await player.wait_for_seq(seq, within_s=5)
        assert (await cp.get_session(session))["state"] == "connected"
        assert (await agent.health())["player_connected"]
    finally:
        await player.close()
