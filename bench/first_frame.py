"""Click to first frame, and input to frame, through coturn relay.

30 sequential sessions on one warm instance: each from `POST /v1/sessions` to
the first decoded frame at an aiortc player that is relay-only through a real
coturn; the instance is recycled (renderer restarted) between sessions, off the
clock. Then input-to-frame latency over 50 inputs in one session: send a
UIInteraction with sequence number N, stop the clock at the first decoded
frame whose pixel marker says N.

Real parts: coturn, the agent process, the renderer stub process, aiortc.
The session API is the real control plane when `control_plane.app` exists
(with a throwaway Redis); until then a stand-in that speaks the same
session-API and agent-API shapes (docs/contracts.md).

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from regional_stack.coturn.local import start_coturn
from regional_stack.signaling.player import Player
from streamfleet import turn
from streamfleet.localproc import ManagedProcess, free_port
from streamfleet.tokens import StreamClaims, b64url_encode, sign

TURN_SECRET = "fake-turn-secret-for-bench"
AGENT_SECRET = "fake-agent-secret-for-bench"
TOKEN_KEY = b"b" * 32
REGION = "eu-west-1"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class StandInControlPlane:
    """Session API + agent API for one instance, in the shapes of docs/contracts.md."""

    def __init__(self, turn_uris: list[str]) -> None:
        self.turn_uris = turn_uris
        self.instance: dict[str, Any] | None = None
        self.assignment: dict[str, Any] | None = None
        self.commands: list[str] = []
        self.epoch = 0
        self.ready = asyncio.Event()
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/agents/register", self.register)
        app.router.add_post("/v1/agents/heartbeat", self.heartbeat)
        app.router.add_post("/v1/agents/events", self.event)
        app.router.add_post("/v1/sessions", self.create)
        app.router.add_delete("/v1/sessions/{sid}", self.delete)
        return app

    async def register(self, request: web.Request) -> web.Response:
        self.instance = await request.json()
        return web.json_response({"instance_id": self.instance["instance_id"], "state": "booting",
                                  "heartbeat_interval_s": 1.0})  # fmt: skip

    async def heartbeat(self, request: web.Request) -> web.Response:
        await request.json()
        commands, self.commands = self.commands, []
        return web.json_response({"assignment": self.assignment, "commands": commands})

    async def event(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["type"] == "ready":
            self.ready.set()
        return web.Response(status=202)

    async def create(self, request: web.Request) -> web.Response:
        await request.json()
        if self.instance is None or not self.ready.is_set():
            return web.json_response({"type": "no_capacity"}, status=503)
        self.ready.clear()
        self.epoch += 1
        sid = f"bench-{self.epoch}"
        now = int(time.time())
        self.assignment = {"session_id": sid, "epoch": self.epoch, "claim_expires_unix": now + 90}
        ip, port = self.instance["private_ip"], self.instance["port"]
        token = sign(
            StreamClaims(sid, self.instance["instance_id"], ip, self.epoch, now + 3600),
            kid="b1",
            key=TOKEN_KEY,
        )
        return web.json_response(
            {
                "session_id": sid,
                "session_secret": "stand-in",
                "state": "assigned",
                "region": REGION,
                "stream": {"signaling_url": f"ws://{ip}:{port}/signal", "token": token},
                "ice_servers": turn.ice_servers(self.turn_uris, TURN_SECRET, sid, now + 3600),
            },
            status=201,
        )

    async def delete(self, request: web.Request) -> web.Response:
        self.assignment = None
        self.commands.append("end_session")
        return web.Response(status=204)


async def one_session(http: aiohttp.ClientSession, cp_url: str, n: int) -> tuple[float, Player]:
    started = time.monotonic()
    async with http.post(
        f"{cp_url}/v1/sessions",
        json={"client_id": f"bench-client-{n}", "model": "car", "configuration": {}},
    ) as resp:
        if resp.status != 201:
            raise RuntimeError(f"POST /v1/sessions: {resp.status} {await resp.text()}")
        body = await resp.json()
    player = Player(
        body["stream"]["signaling_url"], body["stream"]["token"], ice_servers=body["ice_servers"]
    )
    player.session = body  # type: ignore[attr-defined]
    await player.connect()
    await player.wait_first_frame(within_s=15)
    return (time.monotonic() - started) * 1000, player


async def end_session(http: aiohttp.ClientSession, cp_url: str, player: Player) -> None:
    body = player.session  # type: ignore[attr-defined]
    await player.close()
    headers = {"Authorization": f"Bearer {body['session_secret']}"}
    async with http.delete(f"{cp_url}/v1/sessions/{body['session_id']}", headers=headers):
        pass


async def main_async(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    turn_port = free_port()
    base = 45000 + (os.getpid() % 100) * 50
    coturn = start_coturn(port=turn_port, secret=TURN_SECRET, workdir=workdir / "coturn",
                          min_port=base, max_port=base + 49)  # fmt: skip
    turn_uris = [f"turn:127.0.0.1:{turn_port}?transport=udp"]
    cp = StandInControlPlane(turn_uris)
    runner = web.AppRunner(cp.app(), access_log=None)
    await runner.setup()
    cp_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", cp_port).start()
    cp.url = f"http://127.0.0.1:{cp_port}"
    private_ip = "127.45.0.10"
    agent_port = free_port(private_ip)
    env = {
        **os.environ,
        "STREAMFLEET_AGENT_CONTROL_PLANE_URL": cp.url,
        "STREAMFLEET_AGENT_REGION": REGION,
        "STREAMFLEET_AGENT_SECRET": AGENT_SECRET,
        "STREAMFLEET_AGENT_INSTANCE_ID": "i-bench0001",
        "STREAMFLEET_AGENT_PRIVATE_IP": private_ip,
        "STREAMFLEET_AGENT_PORT": str(agent_port),
        "STREAMFLEET_AGENT_STREAMER_PORT": str(free_port()),
        "STREAMFLEET_AGENT_TOKEN_KEYS": json.dumps({"b1": b64url_encode(TOKEN_KEY)}),
        "STREAMFLEET_AGENT_TURN_URIS": json.dumps(turn_uris),
        "STREAMFLEET_AGENT_TURN_SECRET": TURN_SECRET,
        "STREAMFLEET_AGENT_ICE_TRANSPORT_POLICY": "relay",
        "STREAMFLEET_AGENT_HEARTBEAT_INTERVAL_S": "1.0",
        "STREAMFLEET_AGENT_RENDER_FPS": str(args.fps),
    }
    agent = ManagedProcess(
        name="agent", argv=[sys.executable, "-m", "streamfleet.cli", "agent"],
        log_path=workdir / "agent.log", env=env,
    ).start()  # fmt: skip
    first_frames: list[float] = []
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            for n in range(args.sessions):
                # The instance must be warm (ready) before the clock starts.
                await asyncio.wait_for(cp.ready.wait(), 60)
                cp.instance = {**(cp.instance or {}), "port": agent_port}
                ms, player = await one_session(http, cp.url, n)
                first_frames.append(ms)
                log(f"session {n + 1}/{args.sessions}: first frame {ms:.0f} ms")
                if n == args.sessions - 1:
                    for _ in range(args.inputs):
                        t0 = time.monotonic()
                        seq = await player.send_input({"type": "orbit", "dx_deg": 3})
                        await player.wait_for_seq(seq, within_s=5)
                        latencies.append((time.monotonic() - t0) * 1000)
                    log(f"input to frame p50 {statistics.median(latencies):.1f} ms")
                await end_session(http, cp.url, player)
    finally:
        agent.stop()
        await runner.cleanup()
        coturn.stop()
    return {
        "bench": "first_frame",
        "sessions": len(first_frames),
        "inputs": len(latencies),
        "control_plane": "stand-in",
        "first_frame_p50_ms": round(statistics.median(first_frames), 1),
        "first_frame_p99_ms": round(pct(first_frames, 0.99), 1),
        "first_frame_max_ms": round(max(first_frames), 1),
        "input_to_frame_p50_ms": round(statistics.median(latencies), 1),
        "input_to_frame_p99_ms": round(pct(latencies, 0.99), 1),
        "fps": args.fps,
        "goal_first_frame_p50_ms": 1000,
        "goal_first_frame_p99_ms": 2000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--inputs", type=int, default=50)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-first-frame-") as tmp:
        result = asyncio.run(main_async(args, Path(tmp)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
