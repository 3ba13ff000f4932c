"""Hostile inputs: each is refused with 400/403/404 and nothing reaches any
upstream. Two witnesses: the canary upstream (listening on the instance, its
neighbour, 127.11.0.1 and 127.0.0.1) records no request, and nginx's access
log shows no upstream contact for the request."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from streamfleet.localproc import wait_for

from . import rawhttp
from .conftest import INSTANCE_IP, NEIGHBOUR_IP, VECTORS, Router, make_token

IP = INSTANCE_IP
REFUSED = {400, 403, 404}


@pytest.fixture
def canary(router: Router) -> Iterator[Router]:
    before = router.upstream.count()
    log_before = len(router.access_log())
    yield router
    # Let nginx finish writing any access-log line before checking both witnesses.
    time.sleep(0.05)
    assert router.upstream.count() == before, router.upstream.requests()[before:]
    new = router.access_log()[log_before:]
    assert all(e["upstream_status"] == "" for e in new), new


def refused(router: Router, target: str, expected: int, **kw: object) -> rawhttp.RawResponse:
    resp = rawhttp.request(router.port, target, **kw)  # type: ignore[arg-type]
    assert resp.status == expected, (target[:120], resp.status, resp.body[:200])
    return resp


def bad_vector(name: str) -> str:
    token: str = next(v["token"] for v in VECTORS["bad"] if v["name"] == name)
    return token


# --- tokens ---------------------------------------------------------------


def test_forged_signature(canary: Router) -> None:
    token = make_token()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    resp = refused(canary, f"/i/{IP}/?token={forged}", 403)
    assert b"bad_signature" in resp.body
    refused(canary, f"/i/{IP}/?token={bad_vector('payload swapped')}", 403)


def test_unknown_kid(canary: Router) -> None:
    resp = refused(canary, f"/i/{IP}/?token={bad_vector('unknown kid')}", 403)
    assert b"unknown_kid" in resp.body
    other_ring = {"k1": b"an-entirely-different-key-of-32-bytes!"}
    refused(canary, f"/i/{IP}/?token={make_token(keys=other_ring)}", 403)


def test_expired(canary: Router) -> None:
    resp = refused(canary, f"/i/{IP}/?token={make_token(ttl=-1)}", 403)
    assert b"expired" in resp.body
    headers = {"Cookie": f"sf_stream={make_token(ttl=-5)}"}
    refused(canary, f"/i/{IP}/", 403, headers=headers)


def test_token_for_another_ip(canary: Router) -> None:
    resp = refused(canary, f"/i/{IP}/?token={make_token(NEIGHBOUR_IP)}", 403)
    assert b"wrong_instance" in resp.body
    refused(canary, f"/i/{NEIGHBOUR_IP}/?token={make_token(IP)}", 403)
    refused(canary, f"/i/{NEIGHBOUR_IP}/", 403, headers={"Cookie": f"sf_stream={make_token(IP)}"})


def test_missing_or_duplicate_token(canary: Router) -> None:
    refused(canary, f"/i/{IP}/", 403)
    refused(canary, f"/i/{IP}/signal", 403, headers={"X-Stream-Token": make_token()})
    refused(canary, f"/i/{IP}/?token={make_token()}&token={make_token(NEIGHBOUR_IP)}", 400)


def test_valid_query_token_is_not_rescued_by_a_bad_one_in_the_cookie(canary: Router) -> None:
    headers = {"Cookie": f"sf_stream={make_token()}"}
    refused(canary, f"/i/{IP}/?token={make_token(ttl=-1)}", 403, headers=headers)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: make_token()[:-10], id="truncated-signature"),
        pytest.param(lambda: make_token()[:40], id="truncated-payload"),
        pytest.param(lambda: make_token() + "A" * 600, id="oversized-600"),
        pytest.param(lambda: "v1.k1." + "A" * 4000 + ".AAAA", id="oversized-4k"),
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: make_token().replace(".", "%252E"), id="double-encoded-dots"),
    ],
)
def test_truncated_or_oversized_token(canary: Router, token: object) -> None:
    assert callable(token)
    refused(canary, f"/i/{IP}/?token={token()}", 403)


def test_token_too_big_for_the_request_line(canary: Router) -> None:
    # Beyond large_client_header_buffers nginx itself refuses the request line.
    status = rawhttp.request(canary.port, f"/i/{IP}/?token=" + "A" * 20000).status
    assert status in REFUSED, status


# --- the IP in the URL ----------------------------------------------------


@pytest.mark.parametrize("ip", ["169.254.169.254", "10.0.0.1", "0.0.0.0", "255.255.255.255"])
def test_ip_outside_the_region_cidr_even_with_a_signed_token(canary: Router, ip: str) -> None:
    # Signed for that very address: the region check must not rely on the token.
    resp = refused(canary, f"/i/{ip}/latest/meta-data/?token={make_token(ip)}", 404)
    assert b"outside_region" in resp.body


@pytest.mark.parametrize(
    "ip",
    [
        "127.011.0.1",
        "127.11.0.05",
        "127.11.0.0005",
        "127.11.1000.5",
        "127.11.0.5.1",
        "127.11.0",
        "127.11.0.256",
        "[::1]",
        "::ffff:127.11.0.5",
        "%31%32%37.11.0.5",
        "127.11.0.%35",
        "127.11.0.5@evil",
        "127.11.0.5:22",
        "127.11.0.5%3A22",
        "2130706437",
        "0x7f.11.0.5",
        "127.11.0.5%00",
        "127.11.0.5 ",
    ],
)
def test_malformed_ip(canary: Router, ip: str) -> None:
    target = f"/i/{ip}/?token={make_token()}".replace(" ", "%20")
    status = rawhttp.request(canary.port, target).status
    assert status == 400, (ip, status)


# --- the path -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/i/{IP}/../..",
        f"/i/{IP}/../../i/{NEIGHBOUR_IP}/",
        f"/i/{IP}/a/../signal",
        f"/i/{IP}/./signal",
        f"/i/{IP}/..",
        f"/i/{IP}/%2e%2e/%2e%2e/",
        f"/i/{IP}/%2E%2E/",
        f"/i/{IP}/..%2f..%2fetc/passwd",
        f"/i/{IP}/%2e/signal",
        f"/i/{IP}/a%5c..%5c..%5c",
        f"/i/{IP}/a\\..\\b",
        f"/i/{IP}//signal",
        f"/i/{IP}/a//b",
        f"//i/{IP}/",
        f"/i//{IP}/",
        f"/i/{IP}/%00",
    ],
)
def test_path_traversal_and_double_slashes(canary: Router, path: str) -> None:
    sep = "&" if "?" in path else "?"
    status = rawhttp.request(canary.port, f"{path}{sep}token={make_token()}").status
    assert status in REFUSED, (path, status)


def test_cookie_hand_off_does_not_cross_to_a_traversed_path(canary: Router) -> None:
    headers = {"Cookie": f"sf_stream={make_token()}"}
    for path in (f"/i/{IP}/../{NEIGHBOUR_IP}/", f"/i/{IP}/%2e%2e/{NEIGHBOUR_IP}/"):
        assert rawhttp.request(canary.port, path, headers=headers).status in REFUSED


# --- sizes ----------------------------------------------------------------


def test_oversized_header_line(canary: Router) -> None:
    refused(canary, f"/i/{IP}/?token={make_token()}", 400, headers={"X-Big": "a" * 9000})


def test_oversized_cookie(canary: Router) -> None:
    headers = {"Cookie": f"sf_stream={make_token()}; junk=" + "b" * 9000}
    refused(canary, f"/i/{IP}/", 400, headers=headers)


def test_too_many_header_bytes(canary: Router) -> None:
    headers = {f"X-H{i}": "c" * 7000 for i in range(6)}
    refused(canary, f"/i/{IP}/?token={make_token()}", 400, headers=headers)


def test_oversized_body_is_refused_before_the_upstream(canary: Router) -> None:
    status = rawhttp.request(
        canary.port, f"/i/{IP}/upload?token={make_token()}", method="POST", body=b"x" * 1_100_000
    ).status
    assert status == 413


def test_a_cached_token_still_expires(router: Router) -> None:
    token = make_token(ttl=2, session_id="s-short-lived")
    ok = rawhttp.request(router.port, f"/i/{IP}/warm?token={token}")
    assert ok.status == 200  # verified, and now cached in the worker

    def refused_by_cookie() -> bool:
        headers = {"Cookie": f"sf_stream={token}"}
        return rawhttp.request(router.port, f"/i/{IP}/", headers=headers).status == 403

    wait_for(refused_by_cookie, what="cached token refused after expiry", timeout=10)
    before = router.upstream.count()
    assert b"expired" in refused(router, f"/i/{IP}/?token={token}", 403).body
    assert router.upstream.count() == before
