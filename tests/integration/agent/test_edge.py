"""The agent's player side is an edge too: a real `streamfleet agent` process.

Broken HTTP answered as problem+json that echoes nothing; a stream token that
is not UTF-8 refused, not a 500; slow header-less connections closed after the
head timeout; one peer capped in connections. The agent keeps serving.
"""

from __future__ import annotations

import asyncio
import socket
import time

from tests.integration.agent.conftest import AgentFactory, AgentProcess, ControlPlaneFactory

HEAD_TIMEOUT_S = 1.0
PER_IP = 8
MARK = b"ZZagentSecretZZ"


def exchange(agent: AgentProcess, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection((agent.private_ip, agent.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_hostile_http_at_the_agent(
    start_control_plane: ControlPlaneFactory, start_agent: AgentFactory
) -> None:
    cp = await start_control_plane()
    agent = await start_agent(cp, header_timeout_s=HEAD_TIMEOUT_S, max_connections_per_ip=PER_IP)
    # Broken HTTP: a problem, nothing echoed, nothing logged above debug.
    for data in (
        b"GET /" + MARK + b" HTTP/9.9\r\n\r\n",
        b"GET /signal?token=" + MARK * 700 + b" HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + MARK,
    ):
        answer = await asyncio.to_thread(exchange, agent, data)
        assert 400 <= status_of(answer) < 500 and b"application/problem+json" in answer
        assert MARK not in answer
    # aiohttp's own refusals are problems too.
    for request in (b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                    b"DELETE /signal HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"):  # fmt: skip
        answer = await asyncio.to_thread(exchange, agent, request)
        assert status_of(answer) in (404, 405) and b"application/problem+json" in answer
    # A stream token that is not UTF-8 (or not ASCII) is refused, never a 500.
    for token in (b"\xff\xfe\xfd", b"caf\xc3\xa9", b"\x80" * 600):
        request = (
            b"GET /signal HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Stream-Token: " + token + b"\r\n\r\n"
        )
        answer = await asyncio.to_thread(exchange, agent, request)
        assert 400 <= status_of(answer) < 500, answer[:200]
    # Slow, header-less connections: closed after the head timeout with a 408.
    socks = [socket.create_connection((agent.private_ip, agent.port), timeout=10) for _ in range(4)]
    try:
        socks[0].sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        started = time.monotonic()
        answers = [await asyncio.to_thread(read_all, s) for s in socks]
        assert time.monotonic() - started < HEAD_TIMEOUT_S + 5
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
    finally:
        for s in socks:
            s.close()
    # One peer holds at most PER_IP connections; the next is closed unanswered.
    held = [
        socket.create_connection((agent.private_ip, agent.port), timeout=5) for _ in range(PER_IP)
    ]
    try:
        await asyncio.sleep(0.2)
        extra = await asyncio.to_thread(exchange, agent, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert extra == b""
    finally:
        for s in held:
            s.close()
    health = await agent.wait_health(lambda h: h["status"] == "ok", within_s=10)
    assert health["registered"]
    log = agent.process.log_tail(500)
    assert MARK.decode() not in log and "Traceback" not in log
