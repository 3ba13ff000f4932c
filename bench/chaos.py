"""The chaos run (issue 14): break a running local stack as bad luck would, and
count what users and streams suffered, from the outside.

Starts `streamfleet up`'s stack (simulators/local_stack) with N control-plane
replicas behind a load balancer (bench/chaos_stack.py), drives users through
the session API (create; connect: a real aiortc player for a sample, a
signalling handshake through the router for the rest; hold; end), and injects
each fault of bench/chaos_faults.py one at a time, then mixed (replica_kill9
and mixed also start 12 users at once just before the kill). Per fault:

- sessions_lost: sessions their user still held that the API answers 404 (or
  401/403) to their own secret, or shows ended for another reason than the
  user's own DELETE;
- users_refused: users arriving during the fault window who got no session
  (no 201/202 after 3 tries honouring Retry-After) or whose stream was refused
  at the signalling handshake (3 tries);
- double_bookings: pairs of sessions the session API shows live on one
  instance at once (confirmed by a second read of both), plus sessions the ops
  API shows on two instances;
- stranded_sessions: after claim TTL + lost detection + reaper periods, live
  sessions whose instance the ops API does not show serving them, queued
  sessions in no queue, and (after every user left) instances still reserved
  or streaming past claim TTL + a reaper period;
- seconds_until_normal: from the fault's end to the last refusal of a user or
  of a probe user (probes run back to back through the window: create,
  signalling accepted, delete, and every agent's /healthz registered), provided
  probes were served at least twice after it; null when service never settled
  within the window (claim TTL + lost detection + 2 reaper periods + 2 s);
- live_streams_cut: players streaming when the fault began that failed or
  received no frame in the last 3 s at the end of the window.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.chaos_faults import Fault, Target, agent_health, by_name
from bench.chaos_report import (
    FaultTally,
    lost_reason,
    report,
    sessions_on_two_instances,
    shared_hosts,
    stream_host,
    stream_ip,
    until_normal,
)
from bench.chaos_stack import ChaosStack, Timings
from simulators.local_stack.plan import make_plan
from simulators.local_stack.testing import free_base_port
from simulators.player import Player, PlayerError, StreamEnded

FULL_FAULTS = [
    "redis_restart",
    "sentinel_failover",
    "replica_kill9",
    "control_plane_sigstop",
    "agent_kill9",
    "renderer_kill9",
    "coturn_kill9",
    "router_nginx_kill9",
    "mixed",
]
QUICK_FAULTS = ["replica_kill9", "agent_kill9"]


CREATE_RETRY_BUDGET_S = 30.0  # as CREATE_RETRY.budgetMs in web/configurator/session-api.js


@dataclass(frozen=True)
class Profile:
    regions: list[str]
    pool_size: int
    replicas: int
    timings: Timings
    players: int  # pre-fault sessions with a real player
    holders: int  # pre-fault sessions holding a signalling connection
    arrival_s: float  # a new user every this many seconds during the window
    hold_s: float  # each arriving user stays this long
    normal_bound_s: float


QUICK = Profile(
    regions=["eu-central-1"], pool_size=3, replicas=2,
    timings=Timings(claim_ttl_s=8, heartbeat_interval_s=1, missed_heartbeats=3,
                    reconnect_window_s=5, reaper_interval_s=0.5),
    players=1, holders=1, arrival_s=2.0, hold_s=3.0, normal_bound_s=30,
)  # fmt: skip
FULL = Profile(
    regions=["eu-central-1", "eu-west-1"], pool_size=3, replicas=3,
    timings=Timings(claim_ttl_s=15, heartbeat_interval_s=1.5, missed_heartbeats=3,
                    reconnect_window_s=10, reaper_interval_s=1),
    players=2, holders=1, arrival_s=1.5, hold_s=5.0, normal_bound_s=60,
)  # fmt: skip


def user_id(fault: str, suffix: str) -> str:
    """A client_id (letters, digits and ._:@- only) naming the fault and the user."""
    return re.sub(r"[^A-Za-z0-9._:@-]", ".", f"chaos-{fault}")[:100] + f"-{suffix}"


def signal_url(stream: dict[str, Any]) -> str:
    """The signalling URL as a page opens it through the router: the token as the
    `token` query parameter on the first request (nginx_lua/lua/router.lua)."""
    return f"{stream['signaling_url']}?{urlencode({'token': stream['token']})}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Session:
    user: str
    sid: str
    secret: str
    body: dict[str, Any]
    ended_by_user: bool = False
    player: Player | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None
    reader: asyncio.Task[None] | None = None
    reconnects: int = 0


@dataclass
class Run:
    stack: ChaosStack
    http: aiohttp.ClientSession
    profile: Profile
    sessions: dict[str, Session] = field(default_factory=dict)
    users: int = 0
    last_probe_failure: str = ""
    probes: int = 0

    @property
    def url(self) -> str:
        return self.stack.plan.control_plane_url

    # -- the APIs, as their users call them ----------------------------------------
    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any, float | None]:
        """(status, body, Retry-After); status 0 when no answer came."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self.http.request(
                method, self.url + path, json=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=8),
            ) as resp:  # fmt: skip
                text = await resp.text()
                try:
                    data = json.loads(text) if text else None
                except ValueError:
                    data = text
                retry = resp.headers.get("Retry-After")
                return resp.status, data, float(retry) if retry and retry.isdigit() else None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return 0, type(exc).__name__, None

    async def create(self, user: str) -> tuple[int, Any]:
        """A user's create, retried as the configurator page retries it (CREATE_RETRY in
        web/configurator/session-api.js): on 502/503/504 or no answer, with backoff from
        0.25 s to 4 s or Retry-After, for up to 30 s; a create is safe to repeat (same
        client id, same session). Anything else is the answer the user sees."""
        started, delay = time.monotonic(), 0.25
        while True:
            status, body, retry = await self.call(
                "POST", "/v1/sessions", body={"client_id": user, "model": "roadster"}
            )
            if status not in (0, 502, 503, 504):
                return status, body
            wait = retry if retry is not None else delay
            if time.monotonic() - started + wait > CREATE_RETRY_BUDGET_S:
                return status, body
            await asyncio.sleep(wait)
            delay = min(delay * 2, 4.0)

    async def get(self, s: Session) -> tuple[int, Any]:
        status, body, _ = await self.call("GET", f"/v1/sessions/{s.sid}", token=s.secret)
        return status, body

    async def instances(self) -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = []
        for region in self.profile.regions:
            status, body, _ = await self.call(
                "GET", f"/v1/pools/{region}/instances", token=self.stack.plan.admin_token
            )
            if status != 200 or not isinstance(body, dict):
                return None
            found += body.get("instances", [])
        return found

    # -- users ----------------------------------------------------------------------
    async def connect(self, s: Session, view: dict[str, Any], player: bool) -> str | None:
        """Open the stream (3 tries); None when accepted, else why not."""
        stream = view["stream"]
        why = "no try"
        for attempt in range(3):
            if attempt:
                await asyncio.sleep(1.0)
            if player:
                p = Player(signal_url(stream), stream["token"],
                           ice_servers=view.get("ice_servers") or [])  # fmt: skip
                try:
                    await p.connect()
                    await p.wait_first_frame(15)
                    s.player = p
                    s.reader = asyncio.create_task(self.keep_player(s, view))
                    return None
                except (PlayerError, TimeoutError, aiohttp.ClientError, OSError) as exc:
                    why = f"player:{type(exc).__name__}:{getattr(exc, 'status', '')}"
                    await p.close()
                continue
            try:
                ws = await self.http.ws_connect(
                    signal_url(stream), headers={"X-Stream-Token": stream["token"]},
                    heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=2),
                )  # fmt: skip
            except aiohttp.WSServerHandshakeError as exc:
                why = f"signalling:{exc.status}"
                continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                why = f"signalling:{type(exc).__name__}"
                continue
            try:
                first = await ws.receive(timeout=5)
            except TimeoutError:
                why = "signalling:no config message in 5 s"
                await ws.close()
                continue
            if first.type is not aiohttp.WSMsgType.TEXT:
                why = f"signalling:closed:{first.type.name}"
                await ws.close()
                continue
            s.ws = ws
            s.reader = asyncio.create_task(self.hold(s, stream))
            return None
        return why

    @property
    def follow_s(self) -> float:
        """How long a dropped stream is followed before it counts as cut: the lost
        instance must be found (heartbeat timeout, reaper) and the session
        re-placed, or a renderer restarted (a few seconds) and the session bound
        to it again."""
        t = self.profile.timings
        return t.lost_after_s + 2 * t.reaper_interval_s + 20.0

    async def current_stream(
        self, s: Session, seen: dict[str, Any], *, new_only: bool = False
    ) -> dict[str, Any] | None:
        """The session's view to connect to now, as the web page learns it from the
        session's events: the same stream, or the new one after a re-placement
        (`new_only`: only another stream than `seen`'s); waits while it is queued
        again; None once it ended (or, with `new_only`, nothing new in time)."""
        deadline = time.monotonic() + self.follow_s
        while time.monotonic() < deadline and not s.ended_by_user:
            status, view = await self.get(s)
            if status == 200 and isinstance(view, dict):
                if view.get("state") == "ended":
                    return None
                placed = view.get("state") in ("assigned", "connected") and view.get("stream")
                if placed and not (new_only and view["stream"] == seen.get("stream")):
                    return view
            elif status == 404:
                return None
            await asyncio.sleep(0.5)
        return seen if not (s.ended_by_user or new_only) else None

    async def keep_player(self, s: Session, view: dict[str, Any]) -> None:
        """When the signalling connection drops (not a final end), open the stream
        again as Epic's library does, a second apart, and follow a re-placement as
        the web page does (a new stream token on the session's view; queued again
        meanwhile); the new player must show a frame within 10 s. Gives up after
        `follow_s`."""
        while s.player is not None and not s.ended_by_user:
            failure = await s.player.wait_closed(24 * 3600)
            if isinstance(failure, StreamEnded) and failure.final:
                return
            # Told its stream is over for good: only a new stream will do.
            new_only = isinstance(failure, StreamEnded) and failure.replaced
            deadline = time.monotonic() + self.follow_s
            while True:
                await asyncio.sleep(1.0)
                if s.ended_by_user or time.monotonic() > deadline:
                    return  # gave up: the stream stays cut
                now_view = await self.current_stream(s, view, new_only=new_only)
                if now_view is None:
                    return
                view, stream, new_only = now_view, now_view["stream"], False
                p = Player(signal_url(stream), stream["token"],
                           ice_servers=view.get("ice_servers") or [])  # fmt: skip
                try:
                    await p.connect()
                    await p.wait_first_frame(10)
                except (PlayerError, TimeoutError, aiohttp.ClientError, OSError):
                    await p.close()
                    continue
                old, s.player = s.player, p
                s.reconnects += 1
                await old.close()
                break

    async def hold(self, s: Session, stream: dict[str, Any]) -> None:
        """Keep a signalling connection open; when it drops, reconnect as Epic's
        library does (a second apart), following a re-placement to its new stream
        as the web page does; gives up after `follow_s`."""
        view: dict[str, Any] = {"stream": stream}
        while s.ws is not None:
            with contextlib.suppress(Exception):
                async for _ in s.ws:
                    pass
            s.ws = None
            deadline = time.monotonic() + self.follow_s
            while time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                if s.ended_by_user:
                    return
                now_view = await self.current_stream(s, view)
                if now_view is None:
                    return
                view = now_view
                try:
                    s.ws = await self.http.ws_connect(
                        signal_url(view["stream"]),
                        headers={"X-Stream-Token": view["stream"]["token"]},
                        heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=2),
                    )  # fmt: skip
                    s.reconnects += 1
                    break
                except (aiohttp.ClientError, OSError, TimeoutError):
                    continue

    async def place(
        self,
        user: str,
        tally: FaultTally,
        *,
        player: bool,
        queue_wait_s: float,
        leave: asyncio.Event | None = None,
    ) -> Session | None:
        """Create, wait in the queue if queued, connect. None if the user was refused."""
        status, body = await self.create(user)
        if status not in (201, 202) or not isinstance(body, dict):
            tally.refuse(f"create:{status}", time.monotonic())
            return None
        s = Session(user, body["session_id"], body["session_secret"], body)
        self.sessions[s.sid] = s
        view = body
        deadline = time.monotonic() + queue_wait_s
        while view.get("state") == "queued" and time.monotonic() < deadline:
            if leave is not None and leave.is_set():
                break  # the window is over: a waiting user stays queued, watched
            await asyncio.sleep(0.5)
            code, got = await self.get(s)
            if code == 200 and isinstance(got, dict):
                view = got
            elif lost_reason(code, got, s.ended_by_user):
                tally.lost.setdefault(s.sid, lost_reason(code, got, False) or "")
                return s
        if view.get("state") != "assigned" or not view.get("stream"):
            return s  # still queued (or ended): the observer keeps watching it
        why = await self.connect(s, view, player)
        if why is not None:
            # Its instance may have died under it: a re-placed session shows a new
            # stream (after waiting first in line), which the user follows.
            moved = await self.current_stream(s, view, new_only=True)
            if moved is not None:
                why = await self.connect(s, moved, player)
        if why is not None:
            code, got = await self.get(s)
            if lost_reason(code, got, s.ended_by_user):
                tally.lost.setdefault(s.sid, lost_reason(code, got, False) or "")
                return s
            # Refused: the user gives up and leaves (so its claim expiring later is
            # not also counted as a lost session).
            tally.refuse(why, time.monotonic())
            await self.end(s)
            return None
        return s

    async def end(self, s: Session) -> None:
        s.ended_by_user = True
        if s.reader is not None:
            s.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await s.reader
        if s.player is not None:
            await s.player.close()
        if s.ws is not None:
            await s.ws.close()
        for _ in range(3):
            status, _, _ = await self.call("DELETE", f"/v1/sessions/{s.sid}", token=s.secret)
            if status in (200, 404):
                return
            await asyncio.sleep(1.0)

    async def user_cycle(self, tally: FaultTally, window_over: asyncio.Event) -> None:
        self.users += 1
        tally.users += 1
        s = await self.place(
            user_id(tally.name, str(self.users)), tally, player=False, queue_wait_s=20,
            leave=window_over,
        )  # fmt: skip
        if s is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(window_over.wait(), self.profile.hold_s)
        if window_over.is_set() or s.sid in tally.lost:
            return  # the stranded check reads it, then ends it; a lost one has nothing to end
        await self.end(s)

    async def arrivals(self, tally: FaultTally, stop: asyncio.Event) -> None:
        tasks: list[asyncio.Task[None]] = []
        for _ in range(400):  # bounded: the window ends long before
            if stop.is_set():
                break
            tasks.append(asyncio.create_task(self.user_cycle(tally, stop)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.profile.arrival_s)
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- watching -----------------------------------------------------------------
    async def sweep(self, tally: FaultTally) -> dict[str, Any]:
        """GET every session its user still holds; record lost ones and shared instances."""
        watched = [s for s in self.sessions.values() if not s.ended_by_user]
        answers = await asyncio.gather(*(self.get(s) for s in watched))
        views: dict[str, Any] = {}
        for s, (code, body) in zip(watched, answers, strict=True):
            why = lost_reason(code, body, s.ended_by_user)
            if why:
                tally.lost.setdefault(s.sid, why)
            elif code == 200:
                views[s.sid] = body
        for pair in shared_hosts(views):
            if pair in tally.double:
                continue
            again = [self.sessions[sid] for sid in pair]
            confirm = await asyncio.gather(*(self.get(s) for s in again))
            hosts = {stream_host(b) if c == 200 else None for c, b in confirm}
            if not any(s.ended_by_user for s in again) and len(hosts) == 1 and None not in hosts:
                tally.double.add(pair)
        instances = await self.instances()
        twice = set(sessions_on_two_instances(instances or []))
        if twice:
            # Confirmed by a second look, as the pairs above: the regions' views are
            # read one after the other, so a session re-placed into another region
            # between two reads shows in both (a torn read, not two instances).
            instances = await self.instances()
            twice &= set(sessions_on_two_instances(instances or []))
        for sid in sorted(twice):
            tally.double.add(frozenset((sid, "second-instance")))
            tally.seen_twice[sid] = " ".join(  # where the ops API showed it, for the report
                f"{i.get('instance_id')}:{i.get('state')}"
                for i in instances or []
                if i.get("session_id") == sid
            )
        return views

    async def observe(self, tally: FaultTally, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep(tally)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def probe_once(self, n: int) -> str | None:
        """One probe user, served end to end? None if so, else what failed."""
        agents = [i.private_ip for i in self.stack.fleet.instances.values()]
        healths = await asyncio.gather(
            *(asyncio.to_thread(agent_health, self.stack, ip) for ip in agents)
        )
        unwell = [
            ip for ip, h in zip(agents, healths, strict=True) if not (h or {}).get("registered")
        ]
        if not agents or unwell:
            return f"agents not registered: {unwell or 'none running'}"
        status, body, _ = await self.call(
            "POST", "/v1/sessions", body={"client_id": f"probe-{n}", "model": "roadster"}
        )
        if status not in (201, 202) or not isinstance(body, dict):
            return f"create {status}: {str(body)[:120]}"
        s = Session(f"probe-{n}", body["session_id"], body["session_secret"], body)
        why = None
        if status == 201:
            why = await self.connect_once(body)
        status, got, _ = await self.call("DELETE", f"/v1/sessions/{s.sid}", token=s.secret)
        if status != 200:
            why = why or f"delete {status}: {str(got)[:120]}"
        return why

    async def connect_once(self, view: dict[str, Any]) -> str | None:
        stream = view["stream"]
        try:
            async with self.http.ws_connect(
                signal_url(stream), headers={"X-Stream-Token": stream["token"]},
                timeout=aiohttp.ClientWSTimeout(ws_close=2),
            ) as ws:  # fmt: skip
                first = await ws.receive(timeout=5)
                return None if first.type is aiohttp.WSMsgType.TEXT else f"signalling {first.type}"
        except aiohttp.WSServerHandshakeError as exc:
            return f"signalling refused {exc.status}: {exc.message}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"signalling {type(exc).__name__}"

    async def until_normal(self, since: float, bound_s: float) -> float | None:
        """Seconds from `since` to the first of two probe successes in a row."""
        streak_from: float | None = None
        while time.monotonic() - since < bound_s:
            self.probes += 1
            started = time.monotonic()
            why = await self.probe_once(self.probes)
            if why is None:
                if streak_from is not None:
                    return streak_from - since
                streak_from = started
            else:
                streak_from = None
                self.last_probe_failure = why
            await asyncio.sleep(0.3)
        return None

    async def probe_until(self, tally: FaultTally, end: float) -> None:
        """Probe users, one after the other, until `end`; each outcome is timed."""
        while time.monotonic() < end:
            self.probes += 1
            why = await self.probe_once(self.probes)
            if why is None:
                tally.good_at.append(time.monotonic())
            else:
                tally.bad_at.append(time.monotonic())
                tally.probe_failures.append(why)
            await asyncio.sleep(0.5)

    # -- one fault ------------------------------------------------------------------
    async def fault_round(self, fault: Fault) -> dict[str, Any]:
        skip = fault.unavailable(self.stack)
        if skip:
            return {"skipped": skip}
        t, prof = self.profile.timings, self.profile
        tally = FaultTally(fault.name)
        base = await self.until_normal(time.monotonic(), 90)
        if base is None:
            return {
                "skipped": "the stack was not serving normally before the fault (90 s): "
                + self.last_probe_failure
            }
        pre: list[Session] = []
        before = FaultTally("before")  # placing the streams the fault will hit: not its figures
        for i in range(prof.players + prof.holders):
            s = await self.place(user_id(fault.name, f"pre{i}"), before,
                                 player=i < prof.players, queue_wait_s=30)  # fmt: skip
            if s is not None:
                pre.append(s)
        if before.refused or before.lost:
            fault.notes["before_fault"] = {"refused": before.refused, "lost": before.lost}
        players = [s for s in pre if s.player is not None]
        tally.streams = len(players)
        aimed = next((s for s in players), None) or next((s for s in pre if s.ws), None)
        if aimed is None:
            await asyncio.gather(*(self.end(s) for s in self.sessions.values()))
            self.sessions.clear()
            return {
                "skipped": "no session could be streamed before the fault: "
                + json.dumps({"refused": before.refused, "lost": before.lost})
            }
        _code, view = await self.get(aimed)
        region = str((view or {}).get("region") or aimed.body.get("region"))
        ip = stream_ip(view) or stream_ip(aimed.body)
        target = Target(region, str(ip))
        stop_watch, stop_users = asyncio.Event(), asyncio.Event()
        watcher = asyncio.create_task(self.observe(tally, stop_watch))
        users = asyncio.create_task(self.arrivals(tally, stop_users))
        burst = [
            asyncio.create_task(self.user_cycle(tally, stop_users))
            for _ in range(fault.burst_users)
        ]
        if burst:
            await asyncio.sleep(0.05)  # their creates are in flight when the fault hits
        log(f"{fault.name}: injecting (target {target.region} {target.private_ip})")
        started = time.monotonic()
        try:
            await fault.inject(self.stack, target)
            await asyncio.sleep(fault.hold_s)
            await fault.heal(self.stack, target)
        except Exception as exc:  # a part that did not come back is a result, not a crash
            fault.notes["error"] = f"{type(exc).__name__}: {exc}"
            log(f"{fault.name}: {fault.notes['error']}")
        healed = time.monotonic()
        fault.notes["fault_seconds"] = round(healed - started, 1)
        log(f"{fault.name}: healed after {healed - started:.1f} s; probing")
        settle = healed + t.claim_ttl_s + t.lost_after_s + 2 * t.reaper_interval_s + 2
        await self.probe_until(tally, settle)
        tally.seconds_until_normal = until_normal(healed, tally.bad_at, tally.good_at)
        stop_users.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(users, *burst, return_exceptions=True), 60)
        now = time.monotonic()
        for s in players:
            assert s.player is not None
            last = s.player.last.received if s.player.last else 0.0
            if s.player.failure is not None:
                tally.cut[s.sid] = f"failed: {str(s.player.failure)[:80]}"
            elif now - last > 3.0:
                tally.cut[s.sid] = f"no frame for {now - last:.0f} s"
        tally.reconnected = sum(1 for s in players if s.reconnects)
        stop_watch.set()
        await watcher
        await self.stranded(tally)
        tally.sessions_watched = len({*self.sessions})
        self.sessions.clear()
        log(f"{fault.name}: done")
        return tally.result(fault.notes)

    async def stranded(self, tally: FaultTally) -> None:
        views = await self.sweep(tally)
        instances = await self.instances() or []
        serving = {
            i["session_id"]: i for i in instances if i.get("state") in ("reserved", "streaming")
        }
        suspects: dict[str, str] = {}
        for sid, body in views.items():
            state = body.get("state")
            if state == "queued" and not body.get("position"):
                suspects[sid] = "queued in no queue"
            elif state in ("assigned", "connected") and sid not in serving:
                suspects[sid] = f"{state} without an instance serving it"
        if suspects:  # read again: a placement may have been between its two writes
            await asyncio.sleep(1.0)
            views = await self.sweep(tally)
            instances = await self.instances() or []
            serving = {
                i["session_id"]: i for i in instances if i.get("state") in ("reserved", "streaming")
            }
            for sid, why in suspects.items():
                body = views.get(sid) or {}
                state = body.get("state")
                if (state == "queued" and not body.get("position")) or (
                    state in ("assigned", "connected") and sid not in serving
                ):
                    tally.stranded[sid] = why
        await asyncio.gather(*(self.end(s) for s in self.sessions.values() if not s.ended_by_user))
        t = self.profile.timings
        deadline = time.monotonic() + t.claim_ttl_s + t.reaper_interval_s + 2
        leaks: dict[str, str] = {}
        while True:
            got = await self.instances()
            if got is not None:
                leaks = {
                    i["instance_id"]: f"{i['state']} without a live session"
                    for i in got
                    if i.get("state") in ("reserved", "streaming")
                }
                if not leaks:
                    break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        tally.stranded.update(leaks)


def sentinel_supported() -> bool:
    """Whether this build's `streamfleet up` can run Redis with Sentinel."""
    return "redis_mode" in inspect.signature(make_plan).parameters


async def run_on_stack(
    profile: Profile, faults: list[Fault], workdir: Path, redis_mode: str
) -> dict[str, dict[str, Any]]:
    """Start one stack, run `faults` on it in order, stop it."""
    extra: dict[str, Any] = {"redis_mode": redis_mode} if redis_mode != "single" else {}
    plan = make_plan(
        workdir=workdir, regions=profile.regions, pool_sizes={"*": profile.pool_size},
        base_port=free_base_port(), redis_url=None, demo_visit_from=False, **extra,
    )  # fmt: skip
    stack = ChaosStack(plan, log, replicas=profile.replicas, timings=profile.timings)
    results: dict[str, dict[str, Any]] = {}
    stop = asyncio.Event()
    supervisor: asyncio.Task[None] | None = None
    try:
        await stack.start(240)
        supervisor = asyncio.create_task(stack.supervise(stop))
        log(f"stack ready ({redis_mode} redis): {profile.regions}, {profile.replicas} replicas")
        async with aiohttp.ClientSession() as http:
            chaos = Run(stack, http, profile)
            for fault in faults:
                results[fault.name] = await chaos.fault_round(fault)
                log(f"{fault.name}: {json.dumps(results[fault.name])}")
    finally:
        stop.set()
        if supervisor is not None:
            await supervisor
        await asyncio.to_thread(stack.stop)
    return results


async def run(profile: Profile, faults: list[Fault], workdir: Path) -> dict[str, Any]:
    """Faults on a stack as `streamfleet up` runs it (single Redis, no persistence),
    then those needing Sentinel on a second stack with `--redis sentinel`."""
    t = profile.timings
    began = time.monotonic()
    single = [f for f in faults if f.stack_kind == "single"]
    sentinel = [f for f in faults if f.stack_kind == "sentinel"]
    results: dict[str, dict[str, Any]] = {}
    if single:
        results.update(await run_on_stack(profile, single, workdir / "single", "single"))
    if sentinel and not sentinel_supported():
        for f in sentinel:
            results[f.name] = {
                "skipped": "not available: this build's `streamfleet up` has no "
                "`--redis sentinel` (simulators/local_stack/plan.py make_plan(redis_mode=...))"
            }
    elif sentinel:
        results.update(await run_on_stack(profile, sentinel, workdir / "sentinel", "sentinel"))
    ordered = {f.name: results[f.name] for f in faults if f.name in results}
    setup = {
        "regions": profile.regions, "pool_size": profile.pool_size,
        "replicas": profile.replicas, "claim_ttl_s": t.claim_ttl_s,
        "heartbeat_interval_s": t.heartbeat_interval_s, "lost_after_s": t.lost_after_s,
        "reconnect_window_s": t.reconnect_window_s, "reaper_interval_s": t.reaper_interval_s,
        "players_per_fault": profile.players, "arrival_every_s": profile.arrival_s,
        "hold_s": profile.hold_s,
        "redis": "single, no persistence (as streamfleet up); sentinel_failover on a "
        "second stack with --redis sentinel",
        "workdir": str(workdir),
    }  # fmt: skip
    return report(ordered, setup, time.monotonic() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one region, 2 replicas, 2 faults")
    parser.add_argument("--faults", help=f"comma-separated, from: {', '.join(FULL_FAULTS)}")
    parser.add_argument("--workdir", type=Path, help="logs of every part (default: a temp folder)")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    names = (
        [n.strip() for n in args.faults.split(",") if n.strip()]
        if args.faults
        else (QUICK_FAULTS if args.quick else FULL_FAULTS)
    )
    t = profile.timings
    try:
        faults = by_name(names, t.claim_ttl_s, t.reaper_interval_s)
    except ValueError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="streamfleet-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    line = asyncio.run(run(profile, faults, workdir))
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
