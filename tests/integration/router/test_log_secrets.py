"""The router's logs never hold a stream token, even where nginx writes the request line.

nginx appends the raw request line (and the Referer) to every error-log message
about a request: an upstream that refuses, a WebSocket broken mid-stream. The
router masks each `token=` value in place (streamfleet.redact) before any of
that can happen. Own router (error log at info), so its errors are expected.
"""

from __future__ import annotations

import shutil
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from nginx_lua.process import stop_nginx
from tests.integration.router import rawhttp
from tests.integration.router.conftest import (
    INSTANCE_IP,
    Router,
    make_token,
    start_router,
    start_upstream,
    workdir,
)

NOBODY_LISTENS = "127.11.0.9"  # inside the region CIDR, no upstream bound there


@pytest.fixture
def noisy_router() -> Iterator[Router]:
    """A router with its own upstream, which a test may kill mid-stream."""
    own = start_upstream(workdir("router-logs-upstream"))
    r = start_router(workdir("router-logs"), own)
    try:
        yield r
    finally:
        stop_nginx(r.process)
        own.process.stop()
        shutil.rmtree(r.prefix.parent, ignore_errors=True)
        shutil.rmtree(own.log.parent, ignore_errors=True)


def logs_of(router: Router) -> str:
    return "\n".join(
        p.read_text(errors="replace") for p in (router.prefix / "logs").iterdir() if p.is_file()
    )


def wait_for_line(path: Path, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in {path}:\n{path.read_text()[-2000:]}")


def test_an_upstream_error_logs_the_request_line_without_the_token(noisy_router: Router) -> None:
    token = make_token(NOBODY_LISTENS, session_id="s-refused-1")
    referer = f"http://router.test/i/{NOBODY_LISTENS}/?token={token}&x=1"
    resp = rawhttp.request(
        noisy_router.port,
        f"/i/{NOBODY_LISTENS}/page?a=1&token={token}&b=2",
        headers={"Referer": referer},
    )
    assert resp.status == 502
    error_log = noisy_router.prefix / "logs" / "error.log"
    text = wait_for_line(error_log, "connect() failed")
    line = next(x for x in text.splitlines() if "connect() failed" in x)
    # The line is still useful: the path, the other parameters, a masked token.
    assert f"/i/{NOBODY_LISTENS}/page?a=1&token=*" in line and "&b=2" in line
    assert "referrer" in line
    assert token not in logs_of(noisy_router)
    assert token[-20:] not in logs_of(noisy_router)


async def test_a_websocket_broken_mid_stream_logs_no_token(noisy_router: Router) -> None:
    token = make_token(session_id="s-broken-1")
    url = f"{noisy_router.base}/i/{INSTANCE_IP}/signal?token={token}"
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url)
        await ws.receive_json(timeout=5)
        await ws.send_str("offer")
        assert await ws.receive_str(timeout=5) == "echo:offer"
        # The player vanishes mid-stream (a reset, no close frame) while its
        # echoes are on their way: nginx's writes towards it fail.
        for _ in range(200):
            await ws.send_str("x" * 1000)
        assert ws._conn is not None and ws._conn.transport is not None
        sock = ws._conn.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws._conn.transport.abort()
    error_log = noisy_router.prefix / "logs" / "error.log"
    text = wait_for_line(error_log, "request: ")  # nginx did log the request line...
    assert "token=*" in text  # ...with the token masked
    assert noisy_router.process.alive()
    assert rawhttp.request(noisy_router.port, "/healthz").status == 200
    everything = logs_of(noisy_router)
    assert token not in everything and token[-20:] not in everything
