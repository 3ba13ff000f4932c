"""Key rotation on a live router: add the new kid, reload, sign with it,
retire the old kid after the longest token lifetime. A stream opened before
the rotation keeps flowing through every reload (nginx's graceful HUP keeps
the old worker for its open connections)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import aiohttp
import pytest

from nginx_lua.process import reload_nginx, stop_nginx
from streamfleet.localproc import wait_for

from . import rawhttp
from .conftest import INSTANCE_IP, VECTORS, Router, Upstream, make_token, start_router, workdir


def status(router: Router, token: str) -> int:
    return rawhttp.request(router.port, f"/i/{INSTANCE_IP}/ping?token={token}").status


def set_keys(router: Router, kids: list[str] | str) -> None:
    if isinstance(kids, str):
        router.key_file.write_text(kids)
    else:
        router.key_file.write_text(json.dumps({k: VECTORS["keys"][k] for k in kids}))
    reload_nginx(router.process)


@pytest.fixture
def rotating_router(upstream: Upstream) -> Iterator[Router]:
    r = start_router(workdir("router-rotation"), upstream, keys={"k1": VECTORS["keys"]["k1"]})
    try:
        yield r
    finally:
        stop_nginx(r.process)
    shutil.rmtree(r.prefix.parent, ignore_errors=True)


async def test_rotation_keeps_live_streams_and_switches_keys(rotating_router: Router) -> None:
    router = rotating_router
    old, new = make_token(kid="k1"), make_token(kid="k2")
    assert status(router, old) == 200
    assert status(router, new) == 403  # k2 unknown yet

    async with aiohttp.ClientSession() as http:
        ws_url = f"{router.base}/i/{INSTANCE_IP}/signal?token={old}"
        async with http.ws_connect(ws_url) as ws:
            await ws.receive_json(timeout=5)

            # 1. Add k2 next to k1 and reload; both verify.
            set_keys(router, ["k1", "k2"])
            wait_for(lambda: status(router, new) == 200, what="k2 accepted after reload")
            assert status(router, old) == 200

            # 2. A broken key file is refused; the router keeps serving.
            set_keys(router, '{"k2": "too-short"}')
            error_log = router.prefix / "logs" / "error.log"
            wait_for(
                lambda: "cannot load key file" in error_log.read_text(),
                what="reload with a bad key file refused",
            )
            assert status(router, new) == 200

            # 3. Retire k1 (after the longest token lifetime); new k1 requests fail.
            set_keys(router, ["k2"])
            wait_for(lambda: status(router, old) == 403, what="k1 refused after retirement")
            assert status(router, new) == 200

            # The stream opened with k1 before all this is still up.
            await ws.send_str("still-here")
            assert await ws.receive_str(timeout=5) == "echo:still-here"
