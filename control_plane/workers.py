"""Several control-plane processes on one port (`workers` > 1).

A control-plane process keeps no state of its own, so N of them on one host are
N replicas; SO_REUSEPORT lets them all bind the same address and the kernel
spreads new connections among them. This parent serves nothing: it starts the
workers (the same command, `workers` = 1, binding with SO_REUSEPORT), starts a
worker again when one dies, and passes SIGTERM/SIGINT on. Each worker runs its
own background loop (the reaper is leased per region, so N loops do the work of
one) and answers /metrics for itself alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from types import FrameType

# The worker's marker: bind with SO_REUSEPORT (set by this parent only).
REUSE_PORT_ENV = "STREAMFLEET_CONTROL_PLANE_WORKER"
RESTART_DELAY_S = 1.0
QUICK_EXIT_S, MAX_QUICK_EXITS = 5.0, 5


def is_worker() -> bool:
    return os.environ.get(REUSE_PORT_ENV) == "1"


# This interpreter running `streamfleet control-plane` (its options come in the
# environment: see control_plane/cli.py `_env_of`).
WORKER_COMMAND = [
    sys.executable, "-c", "from streamfleet.cli import main; raise SystemExit(main())",
    "control-plane",
]  # fmt: skip


def supervise(settings_env: Mapping[str, str], workers: int, *, say: object = print) -> int:
    """Run `workers` worker processes until SIGTERM or SIGINT; 0 on a clean stop."""
    env = {**os.environ, **settings_env, "STREAMFLEET_WORKERS": "1", REUSE_PORT_ENV: "1"}
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    assert callable(say)
    procs = [subprocess.Popen(WORKER_COMMAND, env=env) for _ in range(workers)]
    started = [time.monotonic()] * workers
    quick_exits = 0  # in a row: a worker that cannot start (port taken) is not retried forever
    say(f"control plane: {workers} workers (pids {', '.join(str(p.pid) for p in procs)})")
    while not stopping and quick_exits < MAX_QUICK_EXITS:
        time.sleep(0.2)
        for i, proc in enumerate(procs):
            code = proc.poll()
            if code is None or stopping:
                continue
            quick = time.monotonic() - started[i] < QUICK_EXIT_S
            quick_exits = quick_exits + 1 if quick else 0
            say(f"control plane: worker {proc.pid} exited ({code}); starting another")
            time.sleep(RESTART_DELAY_S)
            procs[i], started[i] = subprocess.Popen(WORKER_COMMAND, env=env), time.monotonic()
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if quick_exits >= MAX_QUICK_EXITS:
        say("control plane: workers keep exiting at start (see their errors above); stopped")
        return 1
    return 0
