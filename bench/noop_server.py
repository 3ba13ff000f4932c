"""The baseline for bench/api.py: aiohttp answering the same routes doing nothing.

Same framework, same event loop as the control plane under test (argv[2]:
uvloop or asyncio), same JSON sizes, no validation, no Redis: what the HTTP
layer alone costs on this machine, measured in the same run as the real service.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from streamfleet.edge import loop_factory

CREATED = {
    "session_id": "0" * 32 + "-" + "0" * 16,
    "session_secret": "s" * 32,
    "state": "queued",
    "position": 1,
    "estimated_wait_s": 300,
}


async def create(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(CREATED, status=202)


async def delete(request: web.Request) -> web.Response:
    return web.json_response({"session_id": request.match_info["sid"], "state": "ended"})


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/sessions", create)
    app.router.add_delete("/v1/sessions/{sid}", delete)
    factory = loop_factory(sys.argv[2] if len(sys.argv) > 2 else "asyncio")
    loop = factory() if factory else asyncio.new_event_loop()
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop
    )


if __name__ == "__main__":
    main()
