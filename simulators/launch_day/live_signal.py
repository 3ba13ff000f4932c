"""The simulated instances' signalling endpoint: `GET /signal` on each instance's own
loopback address and the agent port, where the region's router proxies a player.

Enough of the real agent's handler (regional_stack/agent/handlers.py `signal`) for a
user to "connect": the stream token is verified with the stack's key, must name
this instance, and is checked against the agent's assignment (refreshed by a
heartbeat when it names an epoch the agent has not heard of); then the agent
reports client_connected (client_reconnected for the same session again), sends
the signalling protocol's `config` and `playerCount` messages and holds the
WebSocket until the player closes it (client_disconnected). No media.
"""

from __future__ import annotations

import time

from aiohttp import web

from regional_stack.signalling import messages as m
from simulators.agent_load import SimAgent
from streamfleet.tokens import TokenError, verify


def _refuse(status: int, kind: str, detail: str) -> web.Response:
    body = {"type": f"about:blank#{kind}", "title": "Stream refused", "status": status,
            "detail": detail, "field": "token", "error": kind}  # fmt: skip
    return web.json_response(body, status=status, content_type="application/problem+json")


class SignalEndpoint:
    """One instance's signalling listener."""

    def __init__(self, agent: SimAgent, keys: dict[str, bytes], port: int) -> None:
        self.agent = agent
        self.keys = keys
        self.port = port
        self.connected: set[tuple[str, int]] = set()  # sessions that connected once
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/signal", self.signal)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(
            self._runner, self.agent.private_ip, self.port, reuse_address=True
        ).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def signal(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("X-Stream-Token") or request.query.get("token")
        if not token:
            return _refuse(401, "missing_token", "no stream token")
        try:
            claims = verify(token, keys=self.keys, now_unix=time.time())
        except TokenError as exc:
            return _refuse(401, str(exc.code), exc.detail)
        agent = self.agent
        if claims.instance_id != agent.instance_id or claims.private_ip != agent.private_ip:
            return _refuse(403, "not_assigned", "token is for another instance")
        key = (claims.session_id, claims.epoch)
        why = await agent.player_connected(*key, again=key in self.connected)
        if why is not None:
            return _refuse(403, "not_assigned", why)
        self.connected.add(key)
        ws = web.WebSocketResponse(heartbeat=10.0)
        try:
            await ws.prepare(request)
            await ws.send_str(m.dump(m.config({"iceServers": []})))
            await ws.send_str(m.dump(m.player_count(1)))
            async for _ in ws:
                pass  # the player's messages have no one to go to: no renderer here
        finally:
            await agent.player_disconnected(*key)
        return ws
