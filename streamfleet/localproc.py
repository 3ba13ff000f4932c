"""Start and stop local server processes on loopback, by PID.

Used by the test fixtures, the broker demo and `streamfleet up`, so that the
way a real Redis (or nginx, coturn, ...) is started is written once. Every
process is a direct child started with `exec` semantics (no shell in
between), so the PID we hold is the server's own and stopping it by PID
stops it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# A line that says what went wrong, as Python, nginx, coturn and Redis write it.
_TELLING = re.compile(
    r"error|exception|failed|refused|denied|in use|cannot|can't|not found|fatal", re.IGNORECASE
)
_TRACEBACK_FRAME = re.compile(r'^\s*(File "|Traceback \(most recent call last\))')
# The last line of a Python traceback: "OSError: [Errno 98] ...".
_PYTHON_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)(: |$)")


def reason(tail: str) -> str | None:
    """What a log says went wrong: the last Python exception if there is one (log noise
    written while shutting down often follows it), else the last telling line, else None."""
    lines = tail.splitlines()
    for line in reversed(lines):
        if _PYTHON_EXCEPTION.match(line):
            return line.strip()
    for line in reversed(lines):
        if _TELLING.search(line) and not _TRACEBACK_FRAME.match(line):
            return line.strip()
    return None


class ProcessFailed(RuntimeError):
    """A server exited or never became ready; the message carries its log tail."""


def free_port(host: str = "127.0.0.1", *, below: int = 65536) -> int:
    """A port free right now. `below` caps it (a cluster node's bus port is +10000)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port < below:
            return port
    raise RuntimeError(f"no free port below {below} on {host}")


def wait_for(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float = 15.0,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `check` with a short backoff until true; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if check():
            return
        if alive is not None and not alive():
            raise ProcessFailed(f"{what}: process exited before it was ready")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class ManagedProcess:
    """One child process with its log file; `stop()` ends it by PID."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: a log may name sessions and instances.
        log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.popen = subprocess.Popen(
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            # Own process group: Ctrl-C in a terminal reaches the supervisor only,
            # which then stops each child in order.
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, check: Callable[[], bool], *, timeout: float = 15.0) -> None:
        try:
            wait_for(check, what=self.name, timeout=timeout, alive=self.alive)
        except (TimeoutError, ProcessFailed) as exc:
            self.stop()
            tail = self.log_tail()
            why = reason(tail)
            raise ProcessFailed(
                f"{exc}{': ' + why if why else ''}\n--- last lines of {self.log_path} ---\n{tail}"
            ) from exc

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Signal our own PID, wait, and SIGKILL it if it does not go."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.kill(self.popen.pid, sig)
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        except ProcessLookupError:
            pass


def write_owner_only(path: Path, text: str) -> Path:
    """Write text to a file only its owner may read or write, created so from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file may have had another mode
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def redis_argv(
    port: int,
    workdir: Path,
    *,
    cluster: bool = False,
    persistent: bool = False,
    config: Path | None = None,
) -> list[str]:
    argv = [
        "redis-server",
        # The password lives in this owner-only file (`requirepass`), never in argv.
        *([str(config)] if config is not None else []),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        # Persistent: every write fsynced, so a restart keeps every state change.
        "--appendonly", "yes" if persistent else "no",
        "--appendfsync", "always",
        "--dir", str(workdir),
        "--protected-mode", "yes",
    ]  # fmt: skip
    if cluster:
        argv += [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(workdir / f"nodes-{port}.conf"),
            "--cluster-node-timeout", "2000",
        ]  # fmt: skip
    return argv


def redis_ping(port: int, password: str | None = None) -> bool:
    # redis-cli reads the password from REDISCLI_AUTH: not on its command line.
    env = {**os.environ, "REDISCLI_AUTH": password} if password else None
    try:
        out = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "PING"],
            capture_output=True,
            timeout=2,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return False
    return out.stdout.strip() == b"PONG"


def start_redis(
    port: int,
    workdir: Path,
    *,
    cluster: bool = False,
    persistent: bool = False,
    password: str | None = None,
    replica_of: int | None = None,
) -> ManagedProcess:
    """A Redis on 127.0.0.1:port; with a password, every client must AUTH. With
    `replica_of`, a replica of the Redis on that loopback port."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = []
    if password:
        # masterauth too: a primary may be demoted to a replica by a failover.
        lines += [f"requirepass {password}", f"masterauth {password}"]
    if replica_of is not None:
        lines.append(f"replicaof 127.0.0.1 {replica_of}")
    config = (
        write_owner_only(workdir / f"redis-{port}.conf", "".join(f"{x}\n" for x in lines))
        if lines
        else None
    )
    proc = ManagedProcess(
        name=f"redis:{port}",
        argv=redis_argv(port, workdir, cluster=cluster, persistent=persistent, config=config),
        log_path=workdir / f"redis-{port}.log",
    ).start()
    proc.wait_ready(lambda: port_open("127.0.0.1", port) and redis_ping(port, password))
    return proc


def create_cluster(ports: Sequence[int], *, timeout: float = 20.0) -> None:
    """Join started cluster-mode servers into one cluster (no replicas)."""
    subprocess.run(
        ["redis-cli", "--cluster", "create"]
        + [f"127.0.0.1:{p}" for p in ports]
        + ["--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        check=True,
        timeout=timeout,
    )

    def cluster_ok() -> bool:
        for p in ports:
            info = subprocess.run(
                ["redis-cli", "-p", str(p), "CLUSTER", "INFO"],
                capture_output=True,
                check=False,
                timeout=2,
            ).stdout
            if b"cluster_state:ok" not in info:
                return False
        return True

    wait_for(cluster_ok, what="redis cluster state ok", timeout=timeout)
