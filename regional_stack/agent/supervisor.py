"""Renderer supervisor: start the renderer command, watch it, restart it, reset it.

The renderer is any Pixel Streaming streamer: the stub here, an Unreal app
with `-PixelStreamingURL={streamer_url}` in production. The supervisor only
owns the process; whether the renderer is *ready* is decided by the
signalling hub (the streamer connected and identified itself).

A reset between sessions is a restart: it is the one reset that works the
same for the stub and for Unreal, and it happens while the instance is
`recycling`, off the path of any user's first frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("streamfleet.agent.renderer")


def render_argv(command: str, values: Mapping[str, str]) -> list[str]:
    """Split the command like a shell would, then fill `{placeholder}`s in each word."""
    argv = []
    for word in shlex.split(command):
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        argv.append(word)
    if not argv:
        raise ValueError("renderer command is empty")
    return argv


class RendererSupervisor:
    def __init__(
        self,
        argv: list[str],
        *,
        on_crash: Callable[[int | None, float], None],
        restart_backoff_s: float = 1.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.argv = argv
        self._on_crash = on_crash
        self._backoff = restart_backoff_s
        self._stop_timeout = stop_timeout_s
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._expected_exit = False
        self._closing = False
        self.restarts = 0
        self.crashes = 0
        self.started_at = 0.0
        self.resetting = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def start(self) -> None:
        self._expected_exit = False
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, start_new_session=True
        )
        self.started_at = time.monotonic()
        log.info("renderer started pid=%s", self._proc.pid)
        self._watch = asyncio.create_task(self._watch_exit(self._proc))

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._expected_exit or self._closing:
            return
        self.crashes += 1
        uptime = time.monotonic() - self.started_at
        log.warning("renderer pid=%s exited unexpectedly (code %s)", proc.pid, code)
        self._on_crash(code, uptime)
        # Back off only when it dies young, so a crash loop does not spin the CPU.
        if uptime < 5 * self._backoff:
            await asyncio.sleep(self._backoff)
        if not self._closing:
            self.restarts += 1
            await self.start()

    async def wait_exit(self, timeout_s: float) -> bool:
        """Whether the current renderer process exits within `timeout_s` (True if none runs)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return True
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _stop_current(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._expected_exit = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self._stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def reset(self) -> None:
        """Stop the renderer (by its PID) and start a fresh one."""
        if self.resetting:
            return
        self.resetting = True
        try:
            await self._stop_current()
            if self._watch is not None:
                await self._watch
            if not self._closing:
                self.restarts += 1
                await self.start()
        finally:
            self.resetting = False

    async def close(self) -> None:
        self._closing = True
        await self._stop_current()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
