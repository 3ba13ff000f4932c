"""`workers` > 1: several control-plane processes on one port (SO_REUSEPORT),
supervised by a parent that serves nothing (control_plane/workers.py)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import aiohttp

from streamfleet.localproc import free_port
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import plane_settings, start_control_plane_process


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.split(":")[1], 16) == port:  # LISTEN
            inodes.add(inode)
    return inodes


def _listens(pid: int, port: int) -> bool:
    """Does process `pid` hold a socket listening on `port`?"""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:
            continue
    return False


def _worker_pids(log: Path) -> list[int]:
    """The workers the parent started first."""
    found = re.search(r"workers \(pids ([\d, ]+)\)", log.read_text())
    assert found, log.read_text()
    return [int(p) for p in found.group(1).split(",")]


async def _until(predicate: object, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def _all_answer(url: str, n: int) -> None:
    """n requests on fresh connections (the kernel picks a worker for each)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        for _ in range(n):
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 200


async def test_workers_share_the_port_and_one_killed_is_replaced(
    clean_redis: str, tmp_path: Path, cloud: Cloud
) -> None:
    settings = plane_settings(clean_redis, cloud, workers=2)
    port = free_port()
    parent = start_control_plane_process(settings, port, tmp_path)
    log = tmp_path / f"control-plane-{port}.log"
    url = f"http://127.0.0.1:{port}"
    try:
        await _until(lambda: "workers (pids" in log.read_text())
        pids = _worker_pids(log)
        assert len(pids) == 2 and parent.pid not in pids
        await _until(lambda: all(_listens(pid, port) for pid in pids))
        assert not _listens(parent.pid, port)  # the parent serves nothing
        await _all_answer(url, 40)

        os.kill(pids[0], signal.SIGKILL)
        await _all_answer(url, 20)  # the other worker serves meanwhile
        await _until(lambda: "starting another" in log.read_text())
        survivor = pids[1]
        await _until(
            lambda: len([p for p in _pids_listening(port) if p != survivor]) == 1, timeout=30
        )
        await _all_answer(url, 20)
    finally:
        parent.stop()
    await _until(lambda: not _pids_listening(port), timeout=15)  # SIGTERM reached every worker


def _pids_listening(port: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _listens(int(entry), port):
            pids.append(int(entry))
    return pids
