"""The HTTP edge of every aiohttp server we expose: the control plane and the agent.

aiohttp's own connection handling is extended in three ways, one connection
handler (`EdgeHandler`) for both servers:

- **head timeout**: a connection that has not sent a complete request head
  within `header_timeout_s` is answered 408 and closed (slowloris: aiohttp
  alone waits for the keep-alive timeout, 75 s by default, per connection);
- **per-peer cap**: one peer address holds at most `max_connections_per_ip`
  open connections; the next is closed at once, before any parsing;
- **parser errors** (aiohttp's BadHttpMessage, LineTooLong, ...) are answered
  as problem+json that echoes nothing of the input, and counted and logged at
  debug level only: aiohttp logs them at error level with the offending bytes,
  which is both a flood and a leak (an over-long URL carries its query string).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger("streamfleet.edge")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://streamfleet.dev/problems/"


def problem_text(status: int, kind: str, title: str, detail: str | None = None) -> str:
    body: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return json.dumps(body, separators=(",", ":"))


_HEAD_TIMEOUT = (
    "HTTP/1.1 408 Request Timeout\r\nContent-Type: " + PROBLEM + "\r\nConnection: close\r\n"
).encode()


@dataclass
class EdgeGuard:
    """Limits and counts, shared by every connection of one server."""

    header_timeout_s: float = 10.0
    max_connections_per_ip: int = 256
    open_by_ip: Counter[str] = field(default_factory=Counter)
    refused_connections: int = 0
    head_timeouts: int = 0
    bad_requests: int = 0

    def admit(self, ip: str) -> bool:
        if self.open_by_ip[ip] >= self.max_connections_per_ip:
            self.refused_connections += 1
            return False
        self.open_by_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self.open_by_ip[ip] -= 1
        if self.open_by_ip[ip] <= 0:
            del self.open_by_ip[ip]


class EdgeHandler(RequestHandler):
    def __init__(self, manager: web.Server, *, guard: EdgeGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._peer_ip: str | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else "unknown"
        if not self._guard.admit(ip):
            log.debug("connection refused: too many from one peer")
            cast(asyncio.Transport, transport).abort()  # never parsed: nothing to undo
            return
        self._peer_ip = ip
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(self._guard.header_timeout_s, self._head_overdue)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self._request_count > 0:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self._request_count == 0 and self.transport is not None:
            self._guard.head_timeouts += 1
            text = problem_text(408, "request-timeout", "Request head not received in time")
            body = text.encode()
            self.transport.write(_HEAD_TIMEOUT + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._peer_ip is not None:
            self._guard.release(self._peer_ip)
            self._peer_ip = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot answer the error")
        if isinstance(exc, ConnectionError):
            # The client went away mid-request (a cut-off body): nobody to answer.
            log.debug("client went away mid-request")
            text = problem_text(400, "bad-request", "Request cut off")
            status = 400
        elif status >= 500:
            # A bug, not input: logged with its trace (problem_middleware answers
            # handler errors itself, so this is aiohttp's own last resort).
            log.error("unhandled error answering a request", exc_info=exc)
            text = problem_text(500, "internal", "Internal error")
        else:
            # Hostile or broken input: counted, logged without its bytes, at debug.
            self._guard.bad_requests += 1
            log.debug("malformed HTTP request: %s", type(exc).__name__ if exc else status)
            kind, title = (
                ("request-head-too-large", "Request head too large")
                if status in (413, 431)
                else ("bad-request", "Malformed HTTP request")
            )
            text = problem_text(status, kind, title)
        resp = web.Response(status=status, text=text, content_type=PROBLEM)
        resp.force_close()
        return resp


class EdgeServer(web.Server):
    def __init__(self, *args: Any, guard: EdgeGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return EdgeHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)


class EdgeRunner(web.AppRunner):
    """An AppRunner whose connections are EdgeHandlers (no access log: ours are JSON)."""

    def __init__(self, app: web.Application, guard: EdgeGuard, **kwargs: Any) -> None:
        kwargs.setdefault("access_log", None)
        kwargs.setdefault("keepalive_timeout", 30.0)
        # After an early answer (408, 413) aiohttp reads the unread body for
        # this long before closing; its 10 s default is a slow client's friend.
        kwargs.setdefault("lingering_time", 1.0)
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return EdgeServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            guard=self.guard,
            **plain._kwargs,
        )


async def serve_until(
    app: web.Application, host: str, port: int, guard: EdgeGuard, stop: asyncio.Event,
    *, reuse_port: bool = False,
) -> None:  # fmt: skip
    runner = EdgeRunner(app, guard)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the named event loop: uvloop's, or None for asyncio's own."""
    if event_loop == "asyncio":
        return None
    if event_loop == "uvloop":
        import uvloop  # the server extra; imported only when chosen

        return uvloop.new_event_loop
    raise ValueError(f"unknown event loop {event_loop!r}")


def run_app(
    app: web.Application, host: str, port: int, guard: EdgeGuard, event_loop: str = "asyncio",
    *, reuse_port: bool = False,
) -> None:  # fmt: skip
    """Serve app on the named event loop until SIGINT or SIGTERM, then shut down gracefully.
    `reuse_port`: bind with SO_REUSEPORT, beside other processes on the same port."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_until(app, host, port, guard, stop, reuse_port=reuse_port)

    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        runner.run(main())
