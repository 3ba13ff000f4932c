"""Test upstream for the router: an echo server that also counts requests.

Binds the same port on several loopback addresses (the instance the tokens
name, a neighbour, 127.0.0.1) so a hostile request that slipped through to
any of them is seen. Every request (HTTP or WebSocket) appends one JSON line
to the log file before it is answered; the tests count those lines.

Run: python -m tests.integration.router.upstream_app --port P --log F --bind A [--bind B ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web


def _record(request: web.Request, log: Path) -> dict[str, Any]:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    entry = {
        "local": sockname[0] if sockname else None,
        "method": request.method,
        "raw_path": request.raw_path,
        "headers": {k.lower(): v for k, v in request.headers.items()},
    }
    with log.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    return entry


def make_app(log: Path) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        entry = _record(request, log)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_json(entry)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str("echo:" + msg.data)
            return ws
        await request.read()
        return web.json_response(entry)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def serve(binds: list[str], port: int, log: Path) -> None:
    runner = web.AppRunner(make_app(log), access_log=None)
    await runner.setup()
    for host in binds:
        await web.TCPSite(runner, host, port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--bind", action="append", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.bind, args.port, args.log))


if __name__ == "__main__":
    main()
