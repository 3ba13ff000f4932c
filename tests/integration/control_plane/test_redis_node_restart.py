"""A Sentinel group's primary killed with -9 and restarted by a supervisor (as
`streamfleet up --redis sentinel` does) keeps its data: the node is brought back
only after the failover, as a replica of the new primary. Restarted at once it
would come back empty and still primary, and its replica would copy the emptiness."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from streamfleet.localproc import ManagedProcess, free_port
from streamfleet.sentinel_group import (
    NodeRestart,
    SentinelGroup,
    current_primary,
    redis_cli,
    start_sentinel_group,
)
from tests.fixtures.servers import SENTINEL_PASSWORD


def test_a_killed_primary_comes_back_as_a_replica_after_the_failover(
    redis_sentinel: SentinelGroup, tmp_path: Path
) -> None:
    group = redis_sentinel
    old = group.primary_port()
    for n in range(50):
        redis_cli(old, SENTINEL_PASSWORD, "SET", f"k{n}", str(n))
    # Replicated before the fault (this test is about the restart, not async loss).
    redis_cli(old, SENTINEL_PASSWORD, "WAIT", "1", "2000")
    group.nodes[old].stop(signal.SIGKILL)

    restart = NodeRestart(old, tmp_path / "restarted", group.sentinel_ports, SENTINEL_PASSWORD)
    named_while_waiting: set[int | None] = set()
    node: ManagedProcess | None = None
    deadline = time.monotonic() + 30
    while node is None:  # the supervisor's tick, bounded
        assert time.monotonic() < deadline, "never restarted"
        primary_before = current_primary(group.sentinel_ports, SENTINEL_PASSWORD)
        node = restart()
        if node is None:
            named_while_waiting.add(primary_before)
            time.sleep(0.2)
    group.nodes[old] = node  # stopped with the group

    assert old in named_while_waiting, "restarted before the sentinels noticed the failure"
    new = current_primary(group.sentinel_ports, SENTINEL_PASSWORD)
    assert new is not None and new != old
    assert redis_cli(new, SENTINEL_PASSWORD, "DBSIZE").strip() == "50"

    def synced() -> bool:
        info = redis_cli(old, SENTINEL_PASSWORD, "INFO", "replication")
        return "role:slave" in info and "master_link_status:up" in info

    deadline = time.monotonic() + 20
    while not synced():
        assert time.monotonic() < deadline, redis_cli(old, SENTINEL_PASSWORD, "INFO", "replication")
        time.sleep(0.1)
    assert redis_cli(old, SENTINEL_PASSWORD, "GET", "k49").strip() == "49"
    group.wait_healthy()  # and the group could fail over again


def test_a_new_group_in_a_reused_folder_starts_with_its_own_password(tmp_path: Path) -> None:
    """`make launch-day-live` (and `streamfleet up`) reuse their folder: the sentinels'
    files from the last run named its password and peers, and the new group's
    sentinels never answered. A new group writes them anew."""
    nodes, sentinels = [free_port() for _ in range(2)], [free_port() for _ in range(3)]
    first = start_sentinel_group(tmp_path, nodes, sentinels, "first-run-password")
    first.stop()
    second = start_sentinel_group(tmp_path, nodes, sentinels, "second-run-password")
    try:
        assert second.primary_port() == nodes[0]
        assert redis_cli(nodes[0], "second-run-password", "PING").strip() == "PONG"
    finally:
        second.stop()
