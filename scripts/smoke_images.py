"""Smoke test of the OCI images (`make smoke-images`, after `make images`).

Runs the control-plane image against a Redis on loopback, then the agent image as
one instance of a region; passes when the control plane answers /healthz and lists
the agent's instance as `ready` (registered, heartbeating, its renderer stub
connected). Host networking, loopback only; secrets are passed by environment,
never on a command line. Containers are stopped and removed by name at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from control_plane.settings import ControlPlaneSettings, RegionConfig
from streamfleet.localproc import start_redis
from streamfleet.tokens import b64url_encode

REGION = "eu-central-1"
INSTANCE_ID = "i-0smoke0image0test"
PRIVATE_IP = "127.11.0.200"


def get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=3) as r:
        return json.loads(r.read() or b"null")


def podman_run(
    podman: list[str], run_flags: list[str], name: str, image: str, env: dict[str, str]
) -> None:
    flags = [f"-e{k}" for k in env]  # values come from our environment, not argv
    done = subprocess.run(
        [*podman, "run", "-d", "--name", name, "--network", "host", *run_flags, *flags, image],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"smoke: podman run {image} failed ({done.returncode}): {done.stderr}")


def wait(what: str, check: Any, timeout: float, podman: list[str], name: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except OSError:
            pass
        time.sleep(0.5)
    logs = subprocess.run([*podman, "logs", name], capture_output=True, text=True).stdout
    raise SystemExit(f"smoke: {what} not seen in {timeout:.0f} s; {name} log:\n{logs[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="image tag")
    parser.add_argument("--base-port", type=int, default=43000)
    parser.add_argument("--podman", default="podman", help="podman command and global flags")
    parser.add_argument("--run-flags", default="", help="extra `podman run` flags (e.g. --ulimit)")
    args = parser.parse_args()
    podman, run_flags = args.podman.split(), args.run_flags.split()
    cp_port, redis_port = args.base_port + 2, args.base_port + 1
    agent_port, streamer_port = args.base_port + 30, args.base_port + 31
    token_key = b64url_encode(secrets.token_bytes(32))
    agent_secret, admin = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    names = [f"streamfleet-smoke-cp-{os.getpid()}", f"streamfleet-smoke-agent-{os.getpid()}"]
    redis = start_redis(redis_port, Path(tempfile.mkdtemp(prefix="smoke-redis-")))
    try:
        settings = ControlPlaneSettings(
            http_host="127.0.0.1", http_port=cp_port, redis_url=f"redis://127.0.0.1:{redis_port}/0",
            regions=[RegionConfig(name=REGION, geography="eu", lat=50.11, lon=8.68,
                                  router_url="http://127.0.0.1:1")],
            token_keys={"k1": token_key}, turn_secret=secrets.token_urlsafe(24),
            agent_secrets={REGION: agent_secret}, admin_token=admin,
        )  # fmt: skip
        url = f"http://127.0.0.1:{cp_port}"
        podman_run(
            podman,
            run_flags,
            names[0],
            f"localhost/streamfleet-control-plane:{args.version}",
            settings.to_env(),
        )
        wait(
            "control plane /healthz",
            lambda: get(url + "/healthz") is not None,
            60,
            podman,
            names[0],
        )
        print(f"smoke: control-plane image answers on {url}")
        agent_env = {
            "STREAMFLEET_AGENT_CONTROL_PLANE_URL": url,
            "STREAMFLEET_AGENT_REGION": REGION,
            "STREAMFLEET_AGENT_SECRET": agent_secret,
            "STREAMFLEET_AGENT_INSTANCE_ID": INSTANCE_ID,
            "STREAMFLEET_AGENT_PRIVATE_IP": PRIVATE_IP,
            "STREAMFLEET_AGENT_STREAMER_HOST": PRIVATE_IP,
            "STREAMFLEET_AGENT_PORT": str(agent_port),
            "STREAMFLEET_AGENT_STREAMER_PORT": str(streamer_port),
            "STREAMFLEET_AGENT_TOKEN_KEYS": json.dumps({"k1": token_key}),
        }
        podman_run(
            podman, run_flags, names[1], f"localhost/streamfleet-agent:{args.version}", agent_env
        )

        def ready() -> bool:
            listed = get(f"{url}/v1/pools/{REGION}/instances", admin)["instances"]
            return any(i["instance_id"] == INSTANCE_ID and i["state"] == "ready" for i in listed)

        wait("the agent's instance as ready", ready, 90, podman, names[1])
        print(f"smoke: agent image registered {INSTANCE_ID} and is ready")
        return 0
    finally:
        for name in reversed(names):
            subprocess.run([*podman, "rm", "-f", "-t", "5", name], capture_output=True, check=False)
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
