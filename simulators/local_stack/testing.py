"""Run `streamfleet up` as a real subprocess from tests and benchmarks."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulators.local_stack.plan import PORT_SPAN
from streamfleet.localproc import port_open


def free_base_port(span: int = PORT_SPAN) -> int:
    """A base port whose whole block (base .. base+span) is free right now.

    Starts at a random block so that concurrent test runs rarely race for one.
    """
    start = random.randrange(20000, 40000 - span, 1000)
    for base in itertools.chain(range(start, 40000 - span, 1000), range(20000, start, 1000)):
        if not any(port_open("127.0.0.1", base + i) for i in range(span)):
            return int(base)
    raise RuntimeError("no free block of ports between 20000 and 40000")


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
def running_stack(*args: str, workdir: Path, timeout: float = 240.0) -> Iterator[dict[str, Any]]:
    """`streamfleet up ARGS` until READY; yields the READY JSON plus `pid` and `log`.

    Stopped with SIGINT (as Ctrl-C) on exit, by PID.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "up.log"
    base = free_base_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamfleet.cli", "up", "--base-port", str(base), "--workdir", str(workdir), *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
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
