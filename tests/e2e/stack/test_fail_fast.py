"""A child that cannot start stops `streamfleet up` at once, saying which, why and its log."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from simulators.local_stack.plan import AGENT_PORT_OFFSET, first_instance_ip
from simulators.local_stack.testing import descendants, free_base_port


def block_first_agent_address() -> tuple[int, socket.socket]:
    """A free base port whose first eu-central-1 agent address we hold, before the stack
    starts. Other stacks on this host use the same instance addresses on their own
    ports, so a block free on 127.0.0.1 may still be taken there: try another block."""
    for _ in range(20):
        base = free_base_port()
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            blocker.bind((first_instance_ip("eu-central-1"), base + AGENT_PORT_OFFSET))
        except OSError:
            blocker.close()
            continue
        blocker.listen()
        return base, blocker
    raise RuntimeError("no base port whose first agent address is free")


def test_an_agent_that_cannot_bind_fails_up_fast_with_its_name_and_log(tmp_path: Path) -> None:
    base, blocker = block_first_agent_address()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamfleet.cli", "up", "--regions", "eu-central-1",
             "--base-port", str(base), "--workdir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            out, _ = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - started
    finally:
        blocker.close()
    assert proc.returncode == 1, out
    # Well before the 180 s ready timeout, and without restarting the agent into the same error.
    assert elapsed < 60, out
    assert "not ready after" not in out and "restarted" not in out
    lines = [x for x in out.splitlines() if x.startswith("streamfleet up: agent:eu-central-1/i-")]
    assert len(lines) == 1, out
    line = lines[0]
    assert "while the stack was starting" in line
    assert "address already in use" in line  # the reason, from the agent's log
    assert f"last lines of {tmp_path}/agents/eu-central-1-i-" in out
    assert "Traceback" in out or "OSError" in out  # the log lines themselves
    assert not descendants(proc.pid)  # every other child was stopped
