"""Fixtures for the router tests: the real nginx with the real template, in
front of a real (aiohttp) test upstream that records every request it gets."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nginx_lua.process import start_nginx, stop_nginx
from nginx_lua.render import RouterSettings, render_router
from streamfleet.localproc import ManagedProcess, ProcessFailed, free_port, port_open
from streamfleet.tokens import StreamClaims, b64url_decode, sign

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "tests" / "vectors" / "stream_tokens.json").read_text())
INSTANCE_IP = "127.11.0.5"
NEIGHBOUR_IP = "127.11.0.6"
REGION_CIDR = "127.11.0.0/16"
# Every address the upstream listens on; a hostile request reaching any of
# them is recorded.
CANARY_BINDS = (INSTANCE_IP, NEIGHBOUR_IP, "127.11.0.1", "127.0.0.1")

# [error] lines a hostile-input suite causes on purpose (nginx's own refusals).
EXPECTED_ERRORS = ("client intended to send too large body",)


def vector_keys() -> dict[str, bytes]:
    return {kid: b64url_decode(v) for kid, v in VECTORS["keys"].items()}


def make_token(
    ip: str = INSTANCE_IP,
    *,
    kid: str = "k1",
    ttl: int = 300,
    session_id: str = "s-router-test",
    keys: dict[str, bytes] | None = None,
) -> str:
    claims = StreamClaims(session_id, "i-0router", ip, 3, int(time.time()) + ttl)
    return sign(claims, kid=kid, key=(keys or vector_keys())[kid])


@dataclass
class Upstream:
    port: int
    log: Path
    process: ManagedProcess

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def count(self) -> int:
        return len(self.requests())


@dataclass
class Router:
    port: int
    prefix: Path
    process: ManagedProcess
    key_file: Path
    upstream: Upstream
    marks: dict[str, int] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[dict[str, Any]]:
        text = (self.prefix / "logs" / "access.log").read_text()
        return [json.loads(line) for line in text.splitlines() if line]

    def unexpected_errors(self) -> list[str]:
        text = (self.prefix / "logs" / "error.log").read_text(errors="replace")
        return [
            line
            for line in text.splitlines()
            if "[error]" in line or "[crit]" in line or "[alert]" in line or "[emerg]" in line
            if not any(expected in line for expected in EXPECTED_ERRORS)
        ]


def start_upstream(workdir: Path) -> Upstream:
    # The port is picked free on the instance IP; it may be taken on one of
    # the other addresses, so a failed start is retried on a new port.
    for attempt in range(3):
        try:
            return _start_upstream(workdir, free_port(INSTANCE_IP))
        except ProcessFailed:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_upstream(workdir: Path, port: int) -> Upstream:
    log = workdir / "upstream-requests.jsonl"
    argv = [sys.executable, "-m", "tests.integration.router.upstream_app", "--port", str(port)]
    argv += ["--log", str(log)]
    for host in CANARY_BINDS:
        argv += ["--bind", host]
    proc = ManagedProcess(
        name="router-test-upstream", argv=argv, log_path=workdir / "upstream.log", cwd=REPO
    ).start()
    proc.wait_ready(lambda: all(port_open(h, port) for h in CANARY_BINDS))
    return Upstream(port=port, log=log, process=proc)


def start_router(
    workdir: Path,
    upstream: Upstream,
    *,
    keys: dict[str, str] | None = None,
    workers: str = "1",
    metrics_listen: str | None = None,
) -> Router:
    key_file = workdir / "keys.json"
    key_file.write_text(json.dumps(keys or VECTORS["keys"]))
    port = free_port()
    settings = RouterSettings(
        region="eu-central-1",
        listen=f"127.0.0.1:{port}",
        region_cidr=REGION_CIDR,
        agent_port=upstream.port,
        key_file=key_file,
        worker_processes=workers,
        test_endpoints=True,
        error_log_level="info",
        metrics_listen=metrics_listen,
    )
    prefix = workdir / "prefix"
    conf = render_router(prefix, settings)
    proc = start_nginx(prefix, conf, ready_url=f"http://127.0.0.1:{port}/healthz", name="router")
    return Router(port=port, prefix=prefix, process=proc, key_file=key_file, upstream=upstream)


def workdir(name: str) -> Path:
    """A private temporary directory. Not tmp_path_factory: concurrent pytest
    runs on one machine prune each other's old basetemp directories, which
    would delete a running nginx's prefix under it."""
    path = Path(tempfile.mkdtemp(prefix=f"streamfleet-{name}-"))
    # nginx started as root runs its workers as nobody; they read Lua modules
    # and write body temp files under the prefix.
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    up = start_upstream(workdir("router-upstream"))
    try:
        yield up
    finally:
        up.process.stop()
    shutil.rmtree(up.log.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def router(upstream: Upstream) -> Iterator[Router]:
    r = start_router(workdir("router"), upstream)
    try:
        yield r
    finally:
        stop_nginx(r.process)
    # Test::Nginx habit: after the whole suite, nothing unexpected in the error log.
    unexpected = r.unexpected_errors()
    assert not unexpected, "unexpected nginx errors:\n" + "\n".join(unexpected)
    shutil.rmtree(r.prefix.parent, ignore_errors=True)  # kept for inspection on failure
