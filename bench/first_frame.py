"""Click to first frame, and input to frame, through coturn relay.

30 sequential sessions on one warm instance: each from `POST /v1/sessions` to
the first decoded frame at an aiortc player that is relay-only through a real
coturn; the instance is recycled (renderer restarted) between sessions, off the
clock. Then input-to-frame latency over 50 inputs in one session: send a
UIInteraction with sequence number N, stop the clock at the first decoded
frame whose pixel marker says N.

Real parts: coturn, the agent process, the renderer stub process, aiortc;
the agent attests as on AWS (moto runs its instance, the local IMDS signs its
identity document).
The session API is the real control plane (`create_app`, in this process)
on a throwaway Redis. The player connects straight to the agent's private IP
with the issued token (the router has its own benchmark).

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
from pydantic import SecretStr

from control_plane.app import create_app
from control_plane.broker_settings import BrokerSettings
from control_plane.settings import ControlPlaneSettings, RegionConfig
from regional_stack.coturn.local import start_coturn
from simulators.cloud import LocalCloud, start_cloud
from simulators.player import Player
from streamfleet.localproc import ManagedProcess, free_port, start_redis
from streamfleet.tokens import b64url_encode
from streamfleet.wire import CreateSessionRequest, InstancesView, SessionView

TURN_SECRET = "fake-turn-secret-for-bench"
AGENT_SECRET = "fake-agent-secret-for-bench"
TOKEN_KEY = b"b" * 32
REGION = "eu-west-1"
ADMIN_TOKEN = "fake-admin-token-for-bench"
AGENT_CIDR = "127.45.0.0/16"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def control_plane_settings(
    redis_url: str, turn_uris: list[str], cloud: LocalCloud
) -> ControlPlaneSettings:
    region = RegionConfig(name=REGION, geography="eu", lat=53.35, lon=-6.26,
                          router_url="http://127.0.0.1:9", turn_uris=turn_uris,
                          private_cidrs=[AGENT_CIDR])  # fmt: skip
    return ControlPlaneSettings(
        redis_url=redis_url,
        regions=[region],
        token_keys={"b1": SecretStr(b64url_encode(TOKEN_KEY))},
        turn_secret=SecretStr(TURN_SECRET),
        agent_secrets={REGION: SecretStr(AGENT_SECRET)},
        # The agent attests as on AWS: moto runs its instance, the local IMDS signs.
        agent_identity_keys={REGION: cloud.public_pem()},
        agent_token_key=SecretStr(b64url_encode(os.urandom(32))),
        ec2_endpoint_url=cloud.endpoint_url,
        admin_token=SecretStr(ADMIN_TOKEN),
        rate_limit_per_minute=100_000,
        broker=BrokerSettings(heartbeat_interval_s=1.0),
    )


async def instance_state(http: aiohttp.ClientSession, cp_url: str, instance_id: str) -> str:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(f"{cp_url}/v1/pools/{REGION}/instances", headers=headers) as resp:
        rows = InstancesView.model_validate_json(await resp.read()).instances
    return next((r.state.value for r in rows if r.instance_id == instance_id), "unknown")


async def wait_ready(http: aiohttp.ClientSession, cp_url: str, instance_id: str) -> None:
    async with asyncio.timeout(60):
        while True:
            if await instance_state(http, cp_url, instance_id) == "ready":
                return
            await asyncio.sleep(0.05)


async def one_session(
    http: aiohttp.ClientSession, cp_url: str, n: int, agent_url: str
) -> tuple[float, Player]:
    started = time.monotonic()
    async with http.post(
        f"{cp_url}/v1/sessions",
        data=CreateSessionRequest(client_id=f"bench-client-{n}", model="car").model_dump_json(),
        headers={"Content-Type": "application/json"},
    ) as resp:
        if resp.status != 201:
            raise RuntimeError(f"POST /v1/sessions: {resp.status} {await resp.text()}")
        view = SessionView.model_validate_json(await resp.read())
    if view.stream is None or view.ice_servers is None:
        raise RuntimeError(f"POST /v1/sessions: 201 without a stream: {view}")
    # Straight to the agent's private IP: the router has its own benchmark.
    ice = [s.model_dump() for s in view.ice_servers]
    player = Player(agent_url, view.stream.token, ice_servers=ice)
    player.session = view  # type: ignore[attr-defined]
    await player.connect()
    await player.wait_first_frame(within_s=15)
    return (time.monotonic() - started) * 1000, player


async def end_session(http: aiohttp.ClientSession, cp_url: str, player: Player) -> None:
    view: SessionView = player.session  # type: ignore[attr-defined]
    await player.close()
    headers = {"Authorization": f"Bearer {view.session_secret}"}
    async with http.delete(f"{cp_url}/v1/sessions/{view.session_id}", headers=headers) as resp:
        SessionView.model_validate_json(await resp.read())


async def main_async(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    turn_port = free_port()
    base = 45000 + (os.getpid() % 100) * 50
    coturn = start_coturn(port=turn_port, secret=TURN_SECRET, workdir=workdir / "coturn",
                          min_port=base, max_port=base + 49)  # fmt: skip
    turn_uris = [f"turn:127.0.0.1:{turn_port}?transport=udp"]
    redis_port = free_port()
    redis = start_redis(redis_port, workdir / "redis")
    cloud = start_cloud()
    private_ip = f"127.45.{os.getpid() % 250}.10"
    instance_id = await asyncio.to_thread(cloud.launch, REGION, private_ip)
    settings = control_plane_settings(f"redis://127.0.0.1:{redis_port}/0", turn_uris, cloud)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    cp_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", cp_port).start()
    cp_url = f"http://127.0.0.1:{cp_port}"
    agent_port = free_port(private_ip)
    env = {
        **os.environ,
        "STREAMFLEET_AGENT_CONTROL_PLANE_URL": cp_url,
        "STREAMFLEET_AGENT_REGION": REGION,
        "STREAMFLEET_AGENT_SECRET": AGENT_SECRET,
        "STREAMFLEET_AGENT_INSTANCE_ID": instance_id,
        "STREAMFLEET_AGENT_IMDS_URL": cloud.imds.url_for(instance_id),
        "STREAMFLEET_AGENT_NONCE_FILE": str(workdir / "agent-nonce"),
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
    agent_url = f"ws://{private_ip}:{agent_port}/signal"
    first_frames: list[float] = []
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            for n in range(args.sessions):
                # The instance must be warm (ready) before the clock starts.
                await wait_ready(http, cp_url, instance_id)
                ms, player = await one_session(http, cp_url, n, agent_url)
                first_frames.append(ms)
                log(f"session {n + 1}/{args.sessions}: first frame {ms:.0f} ms")
                if n == args.sessions - 1:
                    for _ in range(args.inputs):
                        t0 = time.monotonic()
                        seq = await player.send_input({"type": "orbit", "dx_deg": 3})
                        await player.wait_for_seq(seq, within_s=5)
                        latencies.append((time.monotonic() - t0) * 1000)
                    log(f"input to frame p50 {statistics.median(latencies):.1f} ms")
                await end_session(http, cp_url, player)
    finally:
        agent.stop()
        await runner.cleanup()
        redis.stop()
        cloud.stop()
        coturn.stop()
    return {
        "bench": "first_frame",
        "sessions": len(first_frames),
        "inputs": len(latencies),
        "control_plane": "create_app + redis",
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
