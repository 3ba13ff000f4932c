"""Run `streamfleet up` as a real subprocess from tests and benchmarks."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulators.local_stack.plan import PORT_SPAN
from streamfleet.localproc import port_open


def ephemeral_ports_start() -> int:
    """Where the kernel starts picking ports for outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(span: int = PORT_SPAN) -> int:
    """A base port whose whole block (base .. base+span) is free right now.

    Blocks lie below the ephemeral range: a port in it can be taken at any moment
    by some process's outgoing connection, between this check and the bind.
    Starts at a random block so that concurrent test runs rarely race for one.
    """
    low, high = 20000, ephemeral_ports_start() - span
    blocks = list(range(low, high, 1000))
    if not blocks:
        raise RuntimeError(f"no room for a block of {span} ports below {high + span}")
    first = random.randrange(len(blocks))
    for base in blocks[first:] + blocks[:first]:
        if not any(port_open("127.0.0.1", base + i) for i in range(span)):
            return int(base)
    raise RuntimeError(f"no free block of {span} ports between {low} and {high + span}")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc), to check nothing outlives it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and " Z " not in stat.read_text()  # a zombie is already gone


@contextmanager
def running_stack(
    *args: str,
    workdir: Path,
    timeout: float = 240.0,
    base_port: int | None = None,
    command: Sequence[str] = (sys.executable, "-m", "streamfleet.cli"),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """`streamfleet up ARGS` until READY; yields the READY JSON plus `pid` and `log`.

    `command` runs streamfleet (default: this interpreter's); `base_port` defaults
    to a free block. Stopped with SIGINT (as Ctrl-C) on exit, by PID.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "up.log"
    base = base_port or free_base_port()
    # Owner-only like everything of the stack: the transcript shows the admin token.
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as log:
        proc = subprocess.Popen(
            [*command, "up", "--base-port", str(base), "--workdir", str(workdir), *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        info: dict[str, Any] | None = None
        while info is None:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("READY "):
                    info = json.loads(line[6:])
            if info is None:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"streamfleet up exited {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"streamfleet up not ready in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
        info["pid"] = proc.pid
        info["log"] = str(log_path)
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
