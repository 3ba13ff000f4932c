"""A Redis primary, its replicas and three Sentinels on loopback, started and stopped by PID.

Used by the test fixtures and `streamfleet up --redis sentinel`, so the way a
highly available Redis runs locally is written once. Every node and sentinel
requires the same password (owner-only config files; sentinels use it as
`auth-pass` towards the data nodes and as their own `requirepass`).
Failures are detected after `down_after_ms`; a failover then takes about
another second on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streamfleet.localproc import (
    ManagedProcess,
    port_open,
    redis_ping,
    start_redis,
    wait_for,
    write_owner_only,
)

MASTER = "streamfleet"


def redis_cli(port: int, password: str | None, *args: str) -> str:
    """One redis-cli command on 127.0.0.1:port; the password via REDISCLI_AUTH, not argv."""
    env = {**os.environ, "REDISCLI_AUTH": password} if password else None
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        timeout=5,
        check=False,
        env=env,
    )
    return out.stdout.decode(errors="replace")


def sentinel_config(
    port: int, workdir: Path, primary: int, password: str, *, quorum: int, down_after_ms: int
) -> str:
    return "".join(
        f"{line}\n"
        for line in (
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {workdir}",
            "sentinel resolve-hostnames no",
            f"sentinel monitor {MASTER} 127.0.0.1 {primary} {quorum}",
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
            f"sentinel failover-timeout {MASTER} 5000",
            f"sentinel parallel-syncs {MASTER} 1",
            f"sentinel auth-pass {MASTER} {password}",
            # Clients and the other sentinels authenticate with it too.
            f"requirepass {password}",
        )
    )


def start_sentinel(
    port: int, workdir: Path, primary: int, password: str, *, quorum: int = 2,
    down_after_ms: int = 1000, fresh: bool = False,
) -> ManagedProcess:  # fmt: skip
    """One sentinel; its config file is its own (Sentinel rewrites it with what it learns)
    and owner-only. A restarted sentinel keeps that file: it names the current primary.
    `fresh` (a new group): the file is written anew, since one left in a reused folder
    by an earlier group names that group's password, peers and primary."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = workdir / f"sentinel-{port}.conf"
    if fresh or not conf.exists():
        write_owner_only(
            conf,
            sentinel_config(
                port, workdir, primary, password, quorum=quorum, down_after_ms=down_after_ms
            ),
        )
    proc = ManagedProcess(
        name=f"sentinel:{port}",
        argv=["redis-server", str(conf), "--sentinel"],
        log_path=workdir / f"sentinel-{port}.log",
    ).start()
    proc.wait_ready(lambda: port_open("127.0.0.1", port) and redis_ping(port, password))
    return proc


def _fields(reply: str) -> dict[str, str]:
    """redis-cli's one-value-per-line reply of SENTINEL MASTER as a dict."""
    lines = reply.split()
    return dict(zip(lines[::2], lines[1::2], strict=False))


def master_state(sentinel_port: int, password: str) -> dict[str, str]:
    """SENTINEL MASTER as one sentinel sees it ({} when it does not answer)."""
    return _fields(redis_cli(sentinel_port, password, "SENTINEL", "MASTER", MASTER))


def current_primary(sentinel_ports: Sequence[int], password: str) -> int | None:
    """The primary's port as the first sentinel that answers names it (None: none answers)."""
    for port in sentinel_ports:
        state = master_state(port, password)
        if state.get("port", "").isdigit():
            return int(state["port"])
    return None


@dataclass
class NodeRestart:
    """Restart a dead data node the way an operator must. Never while the sentinels still
    name it primary: it would come back empty, still primary, before Sentinel's down-after
    period, and its replicas would copy the emptiness (Sentinel sees a reboot, not a
    failure). So wait for the failover, then start it as a replica of the new primary.
    If no failover comes within `give_up_s` (no replica could take over), start it as
    primary: the data is gone either way, and the control plane rebuilds from the agents.

    Called by a supervisor every tick while the node is down: None means "not yet"."""

    port: int
    workdir: Path
    sentinel_ports: tuple[int, ...]
    password: str
    give_up_s: float = 15.0
    _down_since: float | None = None

    def __call__(self) -> ManagedProcess | None:
        primary = current_primary(self.sentinel_ports, self.password)
        replica_of: int | None = primary
        if primary is None or primary == self.port:
            now = time.monotonic()
            self._down_since = self._down_since or now
            if now - self._down_since < self.give_up_s:
                return None
            replica_of = None
        self._down_since = None
        return start_redis(self.port, self.workdir, password=self.password, replica_of=replica_of)


@dataclass
class SentinelGroup:
    """Data nodes (the first one starts as primary) and sentinels, by port."""

    password: str
    node_ports: tuple[int, ...]
    sentinel_ports: tuple[int, ...]
    nodes: dict[int, ManagedProcess]
    sentinels: dict[int, ManagedProcess]
    master: str = MASTER

    @property
    def sentinel_addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.sentinel_ports]

    def master_state(self, sentinel_port: int | None = None) -> dict[str, str]:
        return master_state(sentinel_port or self.sentinel_ports[0], self.password)

    def primary_port(self) -> int:
        """The primary as the first sentinel that answers sees it now."""
        port = current_primary(self.sentinel_ports, self.password)
        if port is None:
            raise RuntimeError("no sentinel names a primary")
        return port

    def healthy(self, replicas: int) -> bool:
        """Every sentinel sees the primary up, `replicas` replicas and the other sentinels:
        only then can a failover succeed (else: -failover-abort-no-good-slave)."""
        for port in self.sentinel_ports:
            state = self.master_state(port)
            if (
                "s_down" in state.get("flags", "s_down")
                or int(state.get("num-slaves", 0)) < replicas
                or int(state.get("num-other-sentinels", 0)) < len(self.sentinel_ports) - 1
            ):
                return False
        primary = int(self.master_state()["port"])
        info = redis_cli(primary, self.password, "INFO", "replication")
        return f"connected_slaves:{replicas}" in info and "state=online" in info

    def wait_healthy(self, replicas: int | None = None, timeout: float = 30.0) -> None:
        wanted = len(self.node_ports) - 1 if replicas is None else replicas
        wait_for(lambda: self.healthy(wanted), what="redis sentinel group", timeout=timeout)

    def failover(self) -> int:
        """Ask the sentinels for a failover; return the old primary's port."""
        old = self.primary_port()
        reply = redis_cli(
            self.sentinel_ports[0], self.password, "SENTINEL", "FAILOVER", self.master
        )
        if "OK" not in reply:
            raise RuntimeError(f"SENTINEL FAILOVER refused: {reply.strip()}")
        return old

    def kill_primary(self) -> int:
        """kill -9 the primary (by its PID); return its port."""
        port = self.primary_port()
        self.nodes[port].stop(signal.SIGKILL)
        return port

    def wait_new_primary(self, old: int, timeout: float = 20.0) -> int:
        """Until every sentinel names a primary other than `old`; that primary's port."""

        def moved() -> bool:
            return all(
                self.master_state(p).get("port") not in (None, str(old))
                for p in self.sentinel_ports
            )

        wait_for(moved, what="sentinel failover", timeout=timeout)
        return self.primary_port()

    def stop(self) -> None:
        for proc in [*self.sentinels.values(), *self.nodes.values()]:
            proc.stop()


def start_sentinel_group(
    workdir: Path,
    node_ports: Sequence[int],
    sentinel_ports: Sequence[int],
    password: str,
    *,
    down_after_ms: int = 1000,
    wait: bool = True,
) -> SentinelGroup:
    """Primary on node_ports[0], replicas on the rest, a sentinel on each sentinel port
    (quorum: a majority). With `wait`, returns once the group could fail over."""
    primary, *replicas = node_ports
    group = SentinelGroup(password, tuple(node_ports), tuple(sentinel_ports), {}, {})
    try:
        group.nodes[primary] = start_redis(primary, workdir / str(primary), password=password)
        for port in replicas:
            group.nodes[port] = start_redis(
                port, workdir / str(port), password=password, replica_of=primary
            )
        quorum = len(sentinel_ports) // 2 + 1
        for port in sentinel_ports:
            group.sentinels[port] = start_sentinel(
                port, workdir / f"sentinel-{port}", primary, password,
                quorum=quorum, down_after_ms=down_after_ms, fresh=True,
            )  # fmt: skip
        if wait:
            group.wait_healthy()
    except BaseException:
        group.stop()
        raise
    return group
