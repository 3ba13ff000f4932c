"""A valid token reaches its own instance: HTTP and WebSocket, query intact,
token moved from the URL into a cookie and an upstream header."""

from __future__ import annotations

import re
import time

import aiohttp

from . import rawhttp
from .conftest import INSTANCE_IP, Router, make_token


def _upstream_view(resp: rawhttp.RawResponse) -> dict[str, object]:
    import json

    assert resp.status == 200, resp.body
    view: dict[str, object] = json.loads(resp.body)
    return view


def test_healthz_and_unknown_paths(router: Router) -> None:
    assert rawhttp.request(router.port, "/healthz").status == 200
    assert rawhttp.request(router.port, "/").status == 404
    assert rawhttp.request(router.port, "/admin").status == 404


def test_http_with_token_proxies_to_the_instance_and_sets_the_cookie(router: Router) -> None:
    token = make_token()
    resp = rawhttp.request(
        router.port,
        f"/i/{INSTANCE_IP}/player/index.html?a=1&token={token}&b=x%20y&a=3&empty=&flag",
    )
    view = _upstream_view(resp)
    assert view["local"] == INSTANCE_IP
    assert view["raw_path"] == "/player/index.html?a=1&b=x%20y&a=3&empty=&flag"
    headers = view["headers"]
    assert isinstance(headers, dict)
    assert headers["x-stream-token"] == token
    assert "cookie" not in headers
    assert headers["x-forwarded-prefix"] == f"/i/{INSTANCE_IP}"

    cookie = resp.header("Set-Cookie")
    assert cookie is not None
    assert cookie.startswith(f"sf_stream={token}; ")
    attrs = {a.split("=")[0]: a for a in cookie.split("; ")[1:]}
    assert attrs["Path"] == f"Path=/i/{INSTANCE_IP}/"
    assert {"HttpOnly", "Secure", "SameSite"} <= attrs.keys()
    assert attrs["SameSite"] == "SameSite=Strict"
    max_age = int(attrs["Max-Age"].split("=")[1])
    assert 290 <= max_age <= 300  # bounded by the token's own expiry


def test_cookie_alone_works_for_the_next_request(router: Router) -> None:
    token = make_token()
    resp = rawhttp.request(
        router.port,
        f"/i/{INSTANCE_IP}/assets/app.js?v=2",
        headers={"Cookie": f"theme=dark; sf_stream={token}; lang=de"},
    )
    view = _upstream_view(resp)
    assert view["raw_path"] == "/assets/app.js?v=2"
    headers = view["headers"]
    assert isinstance(headers, dict)
    assert headers["x-stream-token"] == token
    assert headers["cookie"] == "theme=dark; lang=de"  # ours stripped, others kept
    assert resp.header("Set-Cookie") is None  # nothing new to hand off


def test_client_supplied_stream_token_header_is_replaced(router: Router) -> None:
    token = make_token()
    resp = rawhttp.request(
        router.port,
        f"/i/{INSTANCE_IP}/x?token={token}",
        headers={"X-Stream-Token": "v1.k1.forged.forged"},
    )
    headers = _upstream_view(resp)["headers"]
    assert isinstance(headers, dict)
    assert headers["x-stream-token"] == token


def test_percent_encoded_token_is_the_same_token(router: Router) -> None:
    token = make_token()
    resp = rawhttp.request(router.port, f"/i/{INSTANCE_IP}/p?token={token.replace('.', '%2E')}")
    headers = _upstream_view(resp)["headers"]
    assert isinstance(headers, dict)
    assert headers["x-stream-token"] == token


def test_bare_instance_path_redirects_to_the_cookie_scope(router: Router) -> None:
    before = router.upstream.count()
    resp = rawhttp.request(router.port, f"/i/{INSTANCE_IP}?token=abc&x=1")
    assert resp.status == 308
    assert resp.header("Location") == f"/i/{INSTANCE_IP}/?token=abc&x=1"
    assert router.upstream.count() == before


def test_post_body_is_proxied(router: Router) -> None:
    token = make_token()
    resp = rawhttp.request(
        router.port, f"/i/{INSTANCE_IP}/api?token={token}", method="POST", body=b'{"k":1}'
    )
    view = _upstream_view(resp)
    assert view["method"] == "POST"


async def test_websocket_with_token_then_with_cookie(router: Router) -> None:
    token = make_token(session_id="s-ws-1")
    url = f"{router.base}/i/{INSTANCE_IP}/signal?token={token}&role=viewer"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["raw_path"] == "/signal?role=viewer"
            assert hello["headers"]["x-stream-token"] == token
            await ws.send_str("offer")
            assert await ws.receive_str(timeout=5) == "echo:offer"
        # A signaling reconnect carries only the cookie.
        async with http.ws_connect(
            f"{router.base}/i/{INSTANCE_IP}/signal?reconnect=1",
            headers={"Cookie": f"sf_stream={token}"},
        ) as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["raw_path"] == "/signal?reconnect=1"
            assert "cookie" not in hello["headers"]
            await ws.send_str("again")
            assert await ws.receive_str(timeout=5) == "echo:again"


def test_access_log_is_json_with_session_id_and_never_the_token(router: Router) -> None:
    token = make_token(session_id="s-logged-42")
    assert rawhttp.request(router.port, f"/i/{INSTANCE_IP}/logme?token={token}").status == 200
    entries: list[dict[str, object]] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # nginx writes the line after the response
        entries = [e for e in router.access_log() if e["session_id"] == "s-logged-42"]
        if entries:
            break
        time.sleep(0.05)
    assert entries and entries[-1]["path"] == f"/i/{INSTANCE_IP}/logme"
    assert entries[-1]["instance_ip"] == INSTANCE_IP
    text = (router.prefix / "logs" / "access.log").read_text()
    assert not re.search(r"v1\.k[0-9]\.", text), "a token reached the access log"
