"""The users of the live replay: lightweight HTTP clients of the real session API.

Each arrives at its scenario time (divided by the speed), from its region's
geography (an address of that city's network in X-Forwarded-For, which the
control plane believes from loopback), creates a session, polls while queued,
gives up (DELETE) when its patience runs out, "connects" by presenting its
verified stream token to the simulated agent of its instance, holds for its
session length (some disconnect and reconnect once half way), then deletes.

Every fact the report needs is recorded per user; nothing is judged here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp

from simulators.geoip_db import CITIES
from simulators.launch_day.live_fleet import SimFleet
from streamfleet.tokens import parse_keyring, verify

# Each region's users come from the city next to it (simulators/geoip_db.py).
REGION_CITY = {
    "eu-central-1": "frankfurt",
    "eu-west-1": "dublin",
    "us-east-1": "virginia",
    "us-west-2": "seattle",
}
POLL_S = 0.25  # wall seconds between polls of a queued session
ENDED_BY_USER = {"client_ended"}


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


def user_ip(region: str, n: int) -> str:
    net = CITIES[REGION_CITY[region]][0].split(".")
    return f"{net[0]}.{net[1]}.{1 + n // 250 % 250}.{1 + n % 250}"


@dataclass
class User:
    n: int
    home: str  # the region whose geography it comes from
    arrive_s: float  # scenario time
    hold_s: float  # scenario seconds it streams
    patience_s: float  # scenario seconds it waits in the queue at most
    reconnects: bool
    # What happened (wall times are loop times).
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    sid: str = ""
    queued: bool = False
    region: str | None = None
    instance: str | None = None
    assigned_wall: float | None = None
    assigned_at_server: float | None = None  # from claim_expires_at - claim TTL (unix)
    wait_s: float | None = None  # scenario seconds until assigned (or until it gave up)
    abandoned: bool = False
    refused: str | None = None
    lost: str | None = None
    connected: bool = False
    ended_wall: float | None = None


@dataclass
class Recorder:
    api_ms: list[tuple[float, float]] = field(default_factory=list)  # (scenario t, ms)
    double_bookings: list[tuple[str, str, str]] = field(default_factory=list)
    holding: dict[str, str] = field(default_factory=dict)  # instance -> sid held by a user
    connect_ms: list[float] = field(default_factory=list)  # signalling open to config message


class Users:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        fleet: SimFleet,
        token_key: str,
        *,
        speed: float,
        start_s: float,
        end_s: float,
        claim_ttl_s: float,
        via_router: bool = True,
    ) -> None:
        self.http = http
        self.url = base_url
        self.fleet = fleet
        self.keys = parse_keyring({"k1": token_key})
        self.speed = speed
        self.start_s = start_s
        self.end_s = end_s  # the replay's end: users still streaming leave then
        self.claim_ttl_s = claim_ttl_s
        self.via_router = via_router
        self.rec = Recorder()
        self.sockets: dict[int, tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]] = {}
        self.t0 = 0.0

    def scenario_now(self) -> float:
        return self.start_s + (asyncio.get_running_loop().time() - self.t0) * self.speed

    async def call(
        self, method: str, path: str, user: User, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"X-Forwarded-For": user_ip(user.home, user.n)}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        try:
            async with self.http.request(
                method, self.url + path, json=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:  # fmt: skip
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0, None
        finally:
            self.rec.api_ms.append(((self.scenario_now()), (time.perf_counter() - started) * 1e3))
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, None

    async def run(self, user: User) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(
            max(0.0, self.t0 + (user.arrive_s - self.start_s) / self.speed - loop.time())
        )
        body = {"client_id": f"launch-{user.n}", "model": "roadster"}
        status, view = 0, None
        user.sent = loop.time()
        for attempt in range(3):  # a client retries 429/5xx/no answer, a few times
            status, view = await self.call("POST", "/v1/sessions", user, body)
            if status in (200, 201, 202) or (400 <= status < 500 and status != 429):
                break
            await asyncio.sleep(0.5 * (attempt + 1))
        user.answered, user.status = loop.time(), status
        if status not in (201, 202) or not isinstance(view, dict):
            user.refused = f"create:{status}"
            return
        user.sid, secret = view["session_id"], view["session_secret"]
        user.queued = view.get("state") == "queued"
        give_up = user.answered + user.patience_s / self.speed
        while view.get("state") == "queued":
            if loop.time() >= give_up:
                user.abandoned = True
                user.wait_s = user.patience_s
                await self._delete(user, secret)
                return
            await asyncio.sleep(POLL_S)
            code, got = await self.call("GET", f"/v1/sessions/{user.sid}", user, token=secret)
            if code == 200 and isinstance(got, dict):
                view = got
        if view.get("state") != "assigned" or not view.get("stream"):
            user.lost = f"not assigned: {view.get('state')}/{view.get('end_reason')}"
            return
        await self._take(user, view, secret)

    async def _take(self, user: User, view: dict[str, Any], secret: str) -> None:
        loop = asyncio.get_running_loop()
        user.assigned_wall = loop.time()
        user.wait_s = (user.assigned_wall - user.sent) * self.speed
        user.region = view.get("region")
        if view.get("claim_expires_at"):
            expires = datetime.fromisoformat(str(view["claim_expires_at"]).replace("Z", "+00:00"))
            user.assigned_at_server = expires.timestamp() - self.claim_ttl_s
        claims = verify(view["stream"]["token"], keys=self.keys, now_unix=time.time())
        user.instance = claims.instance_id
        agent = self.fleet.agent(claims.instance_id)
        stream = view["stream"]
        why = await self._connect(user, stream, claims, again=False)
        if why is not None:
            user.lost = f"connect refused: {why}"
            await self._delete(user, secret)
            return
        user.connected = True
        # Booked twice: the instance let this user in while another user it had let
        # in still holds it (has not deleted its session).
        other = self.rec.holding.get(claims.instance_id)
        if other is not None and other != user.sid:
            self.rec.double_bookings.append((claims.instance_id, other, user.sid))
        self.rec.holding[claims.instance_id] = user.sid
        hold = max(0.0, min(user.hold_s, self.end_s - self.scenario_now())) / self.speed
        if user.reconnects:
            await asyncio.sleep(hold / 2)
            await self._disconnect(user, claims)
            await asyncio.sleep(min(1.0, hold / 10))
            why = await self._connect(user, stream, claims, again=True)
            if why is not None:
                user.lost = f"reconnect refused: {why}"
            await asyncio.sleep(hold / 2)
        else:
            await asyncio.sleep(hold)
        await self._disconnect(user, claims)
        code, got = await self.call("GET", f"/v1/sessions/{user.sid}", user, token=secret)
        if code == 200 and isinstance(got, dict) and got.get("state") == "ended":
            user.lost = user.lost or f"ended by the system: {got.get('end_reason')}"
        await self._delete(user, secret)
        # The agent hears of the end on its next heartbeat; at this speed that comes
        # within a scaled heartbeat interval (5 s real), i.e. almost at once.
        if agent is not None:
            await asyncio.sleep(min(0.5, 5.0 / self.speed))
            await agent.heartbeat()

    async def _connect(
        self, user: User, stream: dict[str, Any], claims: Any, *, again: bool
    ) -> str | None:
        """Open the stream: through the router's signalling URL (as a page does: token
        in the query), or in-process to the simulated agent. None when accepted."""
        if not self.via_router:
            agent = self.fleet.agent(claims.instance_id)
            if agent is None:
                return "instance unknown to the fleet"
            return await agent.player_connected(claims.session_id, claims.epoch, again=again)
        url = f"{stream['signaling_url']}?{urlencode({'token': stream['token']})}"
        started = time.perf_counter()
        try:
            ws = await self.http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        except aiohttp.WSServerHandshakeError as exc:
            return f"signalling:{exc.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"signalling:{type(exc).__name__}"
        try:
            first = await ws.receive(timeout=5)
        except TimeoutError:
            first = None
        if first is None or first.type is not aiohttp.WSMsgType.TEXT:
            await ws.close()
            return "signalling: no config message"
        self.rec.connect_ms.append((time.perf_counter() - started) * 1e3)
        # Read on, as a page does: that answers the agent's pings (else it drops us).
        self.sockets[user.n] = (ws, asyncio.create_task(_drain(ws)))
        return None

    async def _disconnect(self, user: User, claims: Any) -> None:
        held = self.sockets.pop(user.n, None)
        if held is not None:
            ws, reader = held
            await ws.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        elif not self.via_router:
            agent = self.fleet.agent(claims.instance_id)
            if agent is not None:
                await agent.player_disconnected(claims.session_id, claims.epoch)

    async def _delete(self, user: User, secret: str) -> None:
        for _ in range(3):
            code, _ = await self.call("DELETE", f"/v1/sessions/{user.sid}", user, token=secret)
            if code in (200, 204, 404):
                break
            await asyncio.sleep(0.5)
        user.ended_wall = asyncio.get_running_loop().time()
        if user.instance is not None and self.rec.holding.get(user.instance) == user.sid:
            del self.rec.holding[user.instance]
