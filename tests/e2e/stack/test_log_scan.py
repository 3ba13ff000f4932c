"""No secret in any log, process list, metrics or readable file of a real `streamfleet up`.

One full session life on a real stack: create, follow (SSE with ?secret=, and
an over-long one), connect through the router, reconnect, break the WebSocket
mid-stream, end. Then every file under the work folder, the command line of
every process of the stack, and every /metrics are searched for every secret
the stack issued or was given: session secret, stream token, TURN credential,
TURN secret, agent secret, token key, admin token, Redis password. Files are
owner-only; the few that must hold a secret (Redis's and coturn's config, the
router's key file) are 0600 and not searched.
"""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulators.local_stack.plan import (
    AGENT_METRICS_PORT_OFFSET,
    POOL_METRICS_PORTS_OFFSET,
    ROUTER_METRICS_PORTS_OFFSET,
)
from simulators.local_stack.testing import descendants, free_base_port, running_stack
from streamfleet.tokens import StreamClaims, b64url_decode, sign

REGION = "eu-central-1"
# Files that exist to hold a secret: owner-only, and not searched.
SECRET_FILES = ("keys.json", "turnserver.conf", "redis-")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("scanned-stack")
    base = free_base_port()
    with running_stack(
        "--regions", REGION, "--pool-size", "2", workdir=workdir, base_port=base
    ) as info:
        info["base_port"] = base
        yield info


def environ_secrets(pids: set[int]) -> set[str]:
    """Every secret handed to the stack's processes (they get them by environment)."""
    found: set[str] = set()
    for pid in pids:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in env:
            name, _, value = entry.decode(errors="replace").partition("=")
            upper = name.upper()
            if not upper.startswith("STREAMFLEET_") or not value:
                continue
            if "REDIS_URL" in upper and "@" in value:
                found.add(value.split("://", 1)[1].split("@")[0].lstrip(":"))
            elif any(w in upper for w in ("SECRET", "TOKEN_KEY", "ADMIN_TOKEN")):
                if value.startswith("{"):
                    found.update(str(v) for v in json.loads(value).values())
                else:
                    found.add(value)
    return {s for s in found if len(s) >= 16}


async def wait_connectable(
    http: aiohttp.ClientSession, url: str
) -> aiohttp.ClientWebSocketResponse:
    """The agent refuses a second player until it has seen the first one leave."""
    deadline = time.monotonic() + 20
    while True:
        try:
            ws = await http.ws_connect(url)
            return ws
        except aiohttp.WSServerHandshakeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def first_message(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=10)
    return dict(json.loads(msg.data))


async def live_one_session(info: dict[str, Any]) -> dict[str, Any]:
    cp = info["control_plane_url"]
    async with aiohttp.ClientSession() as http:
        body = {"client_id": "scan-e2e-1", "model": "roadster"}
        async with http.post(cp + "/v1/sessions", json=body) as resp:
            assert resp.status == 201, await resp.text()
            session = await resp.json()
        sid, secret = session["session_id"], session["session_secret"]
        # Follow it (EventSource sends the secret in the query), then an
        # over-long URL carrying the secret, which the HTTP parser refuses.
        async with http.get(f"{cp}/v1/sessions/{sid}/events?secret={secret}") as resp:
            assert resp.status == 200
            assert b"event: session" in await resp.content.readuntil(b"\n\n")
        long_url = f"/v1/sessions/{sid}/events?secret={secret}&pad={'x' * 9000}"
        port = urllib.parse.urlsplit(cp).port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET {long_url} HTTP/1.1\r\nHost: cp\r\n\r\n".encode())
            assert sock.recv(100).split(b" ")[1].startswith(b"4")
        stream = session["stream"]
        url = stream["signaling_url"] + "?token=" + stream["token"]
        # Connect, then reconnect after a clean close.
        ws = await wait_connectable(http, url)
        assert (await first_message(ws))["type"] == "config"
        await ws.close()
        ws = await wait_connectable(http, url)
        assert (await first_message(ws))["type"] == "config"
        # Broken mid-stream: the client vanishes without a close frame.
        await ws.send_str(json.dumps({"type": "listStreamers"}))
        assert ws._conn is not None and ws._conn.transport is not None
        ws._conn.transport.abort()
        # And again: reconnect after the break, then end.
        ws = await wait_connectable(http, url)
        assert (await first_message(ws))["type"] == "config"
        async with http.get(stream["url"] + "healthz?token=" + stream["token"]) as resp:
            assert resp.status in (200, 409)
        headers = {"Authorization": "Bearer " + secret}
        async with http.delete(f"{cp}/v1/sessions/{sid}", headers=headers) as resp:
            assert resp.status == 200
        await ws.close()
        # A refused wrong secret and a refused ended token, on the way out.
        async with http.get(f"{cp}/v1/sessions/{sid}", headers={"Authorization": "Bearer x" * 3}):
            pass
    return dict(session)


def token_keys(pids: set[int]) -> dict[str, bytes]:
    for pid in pids:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in env:
            name, _, value = entry.decode(errors="replace").partition("=")
            if name == "STREAMFLEET_TOKEN_KEYS":
                return {k: b64url_decode(v) for k, v in json.loads(value).items()}
    raise AssertionError("no process of the stack has STREAMFLEET_TOKEN_KEYS")


def reach_a_gone_instance(
    info: dict[str, Any], session: dict[str, Any], keys: dict[str, bytes]
) -> str:
    """A valid token for an instance that is gone: nginx logs the upstream error
    with the request line, which is where a token in the URL used to leak."""
    router = info["regions"][REGION].rstrip("/")
    ip = ".".join([*session["stream"]["url"].split("/i/")[1].split("/")[0].split(".")[:3], "250"])
    kid, key = next(iter(keys.items()))
    claims = StreamClaims(session["session_id"], "i-gone0000000", ip, 1, int(time.time()) + 300)
    token = sign(claims, kid=kid, key=key)
    try:
        urllib.request.urlopen(f"{router}/i/{ip}/signal?token={token}", timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 502, exc.code
    else:
        raise AssertionError("a gone instance answered")
    return token


def metrics_texts(info: dict[str, Any], instance_ips: list[str]) -> dict[str, str]:
    base = info["base_port"]
    urls = {
        "control-plane": info["control_plane_url"] + "/metrics",
        "router": f"http://127.0.0.1:{base + ROUTER_METRICS_PORTS_OFFSET}/metrics",
        "pool-manager": f"http://127.0.0.1:{base + POOL_METRICS_PORTS_OFFSET}/metrics",
        **{f"agent {ip}": f"http://{ip}:{base + AGENT_METRICS_PORT_OFFSET}/metrics"
           for ip in instance_ips},
    }  # fmt: skip
    out = {}
    for name, url in urls.items():
        with urllib.request.urlopen(url, timeout=5) as resp:
            out[name] = resp.read().decode(errors="replace")
    return out


def test_no_secret_in_logs_argv_metrics_or_readable_files(stack: dict[str, Any]) -> None:
    session = asyncio.run(live_one_session(stack))
    workdir = Path(stack["workdir"])
    pids = descendants(stack["pid"])
    gone_token = reach_a_gone_instance(stack, session, token_keys(pids))
    router_errors = "".join(
        p.read_text(errors="replace") for p in workdir.glob("routers/*/logs/error.log")
    )
    assert "token=*" in router_errors  # the request line was logged, its token masked
    request = urllib.request.Request(
        f"{stack['control_plane_url']}/v1/pools/{REGION}/instances",
        headers={"Authorization": "Bearer " + stack["admin_token"]},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        ips = [row["private_ip"] for row in json.loads(resp.read())["instances"]]

    issued = {session["session_secret"], session["stream"]["token"], stack["admin_token"]}
    issued.add(gone_token)
    issued |= {s["credential"] for s in session["ice_servers"] if "credential" in s}
    given = environ_secrets(pids | {stack["pid"]})
    assert len(given) >= 5, "expected the TURN, agent, token-key, agent-token-key and Redis secrets"
    # Each agent's registration nonce (who holds it can register as that instance).
    nonces = {p.read_text().strip() for p in workdir.glob("agents/*.nonce")}
    assert nonces, "expected the agents' nonce files"
    secrets = issued | given | nonces
    # A long prefix is a leak too (a truncated URL in a log line).
    needles = {s: [s, s[:16], s[-16:]] for s in secrets}
    time.sleep(1.0)  # let every process flush the lines of the last requests

    def leaks(where: str, text: str) -> list[str]:
        return [f"{where}: {s[:4]}…" for s, ns in needles.items() if any(n in text for n in ns)]

    found: list[str] = []
    for path in sorted(workdir.rglob("*")):
        mode = path.lstat().st_mode
        if path.is_symlink() or stat.S_ISSOCK(mode):
            continue
        if mode & 0o077:
            found.append(f"{path.relative_to(workdir)} is open to others: {oct(mode & 0o777)}")
        if not path.is_file() or path.name.startswith(SECRET_FILES) or path.suffix == ".nonce":
            continue
        text = path.read_bytes().decode(errors="replace")
        if path == workdir / "up.log":
            # The terminal transcript: `up` prints the admin token for its user, nothing else.
            text = text.replace(stack["admin_token"], "")
        found += leaks(str(path.relative_to(workdir)), text)
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found += leaks(f"argv of {pid} ({argv[:40]})", argv)
    for name, text in metrics_texts(stack, ips).items():
        found += leaks(f"/metrics of {name}", text)
    assert found == [], "secrets leaked:\n" + "\n".join(found)


def test_the_stacks_redis_requires_its_password(stack: dict[str, Any]) -> None:
    assert "@" not in stack["redis_url"]  # READY shows no password
    port = int(stack["redis_url"].rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n")
        assert sock.recv(200).startswith(b"-NOAUTH")
