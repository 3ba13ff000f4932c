"""Hostile input at the control plane's edge, against a real `streamfleet control-plane` process.

Deep, non-finite, duplicated and wrongly typed JSON; bytes that are not UTF-8
in the head; broken HTTP; slow and partial requests; one peer opening too many
connections. Every answer is a problem+json 4xx (never a 5xx, never an echo of
the input), refused before any authentication work, and nothing changes.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from streamfleet.localproc import free_port
from tests.fixtures.cloud import Cloud
from tests.fixtures.control_plane import (
    ADMIN,
    agent_secret,
    plane_settings,
    start_control_plane_process,
)

REGION = "eu-central-1"
HEAD_TIMEOUT_S = 1.0
PER_IP = 40
JSON_ROUTES = [
    ("POST", "/v1/sessions"),
    ("POST", "/v1/agents/register"),
    ("POST", "/v1/agents/heartbeat"),
    ("POST", "/v1/agents/events"),
    ("PUT", f"/v1/pools/{REGION}/constraint"),
    ("POST", f"/v1/pools/{REGION}/instances/i-0123456789abcdef0/drain"),
]
AUTHENTICATED = [
    ("GET", "/v1/pools"),
    ("GET", f"/v1/pools/{REGION}/instances"),
    ("GET", "/v1/sessions/s-0000000000000000000000"),
    ("DELETE", "/v1/sessions/s-0000000000000000000000"),
    ("POST", "/v1/admin/sessions/s-0000000000000000000000/end"),
    ("POST", "/v1/agents/heartbeat"),
]


class Plane:
    def __init__(self, port: int, proc: Any) -> None:
        self.port, self.proc = port, proc
        self.url = f"http://127.0.0.1:{port}"

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Send data as is on one connection; everything the server answers."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def head_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (h.partition(": ") for h in lines)}
    return int(status_line.split(" ")[1]), headers, body


@pytest.fixture(scope="module")
def plane(
    redis_server: Any, cloud: Cloud, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plane]:
    port = free_port()
    settings = plane_settings(
        redis_server.url,
        cloud,
        rate_limit_per_minute=100_000,
        header_timeout_s=HEAD_TIMEOUT_S,
        body_timeout_s=HEAD_TIMEOUT_S,
        max_connections_per_ip=PER_IP,
    )
    proc = start_control_plane_process(settings, port, tmp_path_factory.mktemp("hostile"))
    try:
        yield Plane(port, proc)
    finally:
        proc.stop()
    log = proc.log_tail(2000)
    assert "Traceback" not in log and '"level":"error"' not in log


def assert_problem(resp: requests.Response, *statuses: int) -> dict[str, Any]:
    assert resp.status_code in statuses, (resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.text[:200]
    body: dict[str, Any] = resp.json()
    assert body["status"] == resp.status_code
    return body


def send(plane: Plane, method: str, path: str, data: bytes, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, plane.url + path, data=data, headers=headers, timeout=10)


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize("token", [None, "wrong", ADMIN, agent_secret(REGION)])
def test_deep_json_is_refused_before_authentication(
    plane: Plane, method: str, path: str, token: str | None
) -> None:
    deep = b"[" * 5000 + b"]" * 5000  # within the body limit, far beyond the depth limit
    resp = send(plane, method, path, deep, token)
    if "/pools/" in path and token != ADMIN:
        # The ops API checks its admin token first: a constant-time compare, no I/O.
        assert_problem(resp, 401, 403)
        return
    body = assert_problem(resp, 400)
    assert body["type"].endswith("/invalid-json") and "deeper" in body["detail"]


@pytest.mark.parametrize(
    "number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" * 30]
)
def test_non_finite_numbers_are_refused(plane: Plane, number: bytes) -> None:
    data = b'{"client_id":"c-nan","model":"car","latencies_ms":{"eu-central-1":' + number + b"}}"
    body = assert_problem(send(plane, "POST", "/v1/sessions", data), 400)
    assert number.decode() not in json.dumps(body)
    beat = (
        b'{"instance_id":"i-0123456789abcdef0","region":"eu-central-1","state":"ready",'
        b'"health":{"gpu":' + number + b"}}"
    )
    assert_problem(send(plane, "POST", "/v1/agents/heartbeat", beat, agent_secret(REGION)), 400)


def test_duplicate_keys_are_refused_naming_the_key(plane: Plane) -> None:
    data = b'{"client_id":"c-dup","client_id":"c-other","model":"car"}'
    body = assert_problem(send(plane, "POST", "/v1/sessions", data), 400)
    assert body["field"] == "client_id" and "duplicate" in body["detail"]


def test_lone_surrogates_are_refused(plane: Plane) -> None:
    data = b'{"client_id":"c-sur","model":"car","configuration":{"paint":"\\ud800"}}'
    body = assert_problem(send(plane, "POST", "/v1/sessions", data), 400)
    assert body["field"] == "configuration.paint"


@pytest.mark.parametrize(
    ("value", "field"),
    [({"constrained": "yes"}, "constrained"), ({"constrained": 1}, "constrained"),
     ({"constrained": True, "reason": 5}, "reason")],
)  # fmt: skip
def test_no_type_coercion_and_nothing_changes(
    plane: Plane, value: dict[str, Any], field: str
) -> None:
    path = f"/v1/pools/{REGION}/constraint"
    body = assert_problem(send(plane, "PUT", path, json.dumps(value).encode(), ADMIN), 422)
    assert body["field"] == field
    pools = requests.get(
        plane.url + "/v1/pools", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5
    ).json()
    assert pools["regions"][REGION]["constrained"] is False


@pytest.mark.parametrize(
    "beat",
    [{"epoch": "3"}, {"epoch": 3.0}, {"epoch": True}, {"state": 1}, {"session_id": 7}],
)
def test_agent_models_do_not_coerce(plane: Plane, beat: dict[str, Any]) -> None:
    body = {"instance_id": "i-0123456789abcdef0", "region": REGION, "state": "ready", **beat}
    data = json.dumps(body).encode()
    assert_problem(send(plane, "POST", "/v1/agents/heartbeat", data, agent_secret(REGION)), 422)


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
@pytest.mark.parametrize("token", [b"\xff\xfe\xfd", b"caf\xc3\xa9", b"\x80" * 40, b"a\x01b"])
def test_non_utf8_or_odd_bearer_tokens_are_400_or_401(
    plane: Plane, method: str, path: str, token: bytes
) -> None:
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: cp\r\nConnection: close\r\n".encode()
        + b"Authorization: Bearer " + token + b"\r\n\r\n"
    )  # fmt: skip
    status, headers, body = head_and_body(plane.raw(request))
    assert 400 <= status < 500, (status, body[:200])
    assert headers["content-type"].startswith("application/problem+json")
    assert token not in body


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/sessions/s-1?secret=%ff%fe HTTP/1.1\r\nHost: cp\r\n",
        b"GET /v1/sessions/\xff\xfe HTTP/1.1\r\nHost: cp\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: cp\r\nX-Forwarded-For: \xff\xfe\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: cp\r\nOrigin: \xc3\x28\r\n",
    ],
)
def test_non_utf8_heads_are_problems(plane: Plane, head: bytes) -> None:
    status, headers, body = head_and_body(plane.raw(head + b"Connection: close\r\n\r\n"))
    assert 400 <= status < 500, (status, body[:200])
    assert headers["content-type"].startswith("application/problem+json")


SECRET_PART = "ZZsecretZZ" * 3


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS to a plain port
        b"GET /" + SECRET_PART.encode() + b" HTTP/9.9\r\n\r\n",
        b"GET /v1/sessions/s-1/events?secret=" + SECRET_PART.encode() * 400 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: cp\r\nX-" + SECRET_PART.encode() + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: cp\r\nX-Big: " + SECRET_PART.encode() * 1000 + b"\r\n\r\n",
        b"POST /v1/sessions HTTP/1.1\r\nHost: cp\r\nContent-Length: x" + SECRET_PART.encode()
        + b"\r\n\r\n",
        b"POST /v1/sessions HTTP/1.1\r\nHost: cp\r\nTransfer-Encoding: chunked\r\n\r\nzz"
        + SECRET_PART.encode() + b"\r\n",
    ],
)  # fmt: skip
def test_http_parser_errors_are_problems_that_echo_nothing(plane: Plane, data: bytes) -> None:
    answer = plane.raw(data)
    status, headers, _body = head_and_body(answer)
    assert 400 <= status < 500, answer[:300]
    assert headers["content-type"].startswith("application/problem+json")
    assert SECRET_PART[:8].encode() not in answer
    assert SECRET_PART[:8] not in plane.proc.log_tail(2000)


def test_slow_headerless_connections_are_closed_after_the_head_timeout(plane: Plane) -> None:
    socks = [socket.create_connection(("127.0.0.1", plane.port), timeout=10) for _ in range(30)]
    try:
        for i, sock in enumerate(socks):
            if i % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cp\r\nX-Slow: ")  # never finished
        started = time.monotonic()
        answers = [read_all(sock) for sock in socks]
        waited = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert waited < HEAD_TIMEOUT_S + 5
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:40] for a in answers}
    assert requests.get(plane.url + "/healthz", timeout=5).status_code == 200


def test_a_slow_body_is_answered_408(plane: Plane) -> None:
    with socket.create_connection(("127.0.0.1", plane.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/sessions HTTP/1.1\r\nHost: cp\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"client_id"'
        )
        started = time.monotonic()
        status, headers, _ = head_and_body(read_all(sock))
    assert status == 408 and time.monotonic() - started < HEAD_TIMEOUT_S + 5
    assert headers["content-type"].startswith("application/problem+json")


def test_one_peer_holds_at_most_its_cap_of_connections(plane: Plane) -> None:
    socks = [socket.create_connection(("127.0.0.1", plane.port), timeout=5) for _ in range(PER_IP)]
    try:
        time.sleep(0.2)  # let the server accept them all before the extra one arrives
        with socket.create_connection(("127.0.0.1", plane.port), timeout=5) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: cp\r\n\r\n")
            assert read_all(extra) == b""  # closed without an answer
        # Another loopback address is another peer: still served.
        with socket.create_connection(
            ("127.0.0.1", plane.port), timeout=5, source_address=("127.0.0.2", 0)
        ) as other:
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: cp\r\nConnection: close\r\n\r\n")
            assert read_all(other).startswith(b"HTTP/1.1 200")
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the slots are released as the server sees the closes
        try:
            if requests.get(plane.url + "/healthz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        pytest.fail("the cap was not released")


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /v1/po",
        b"POST /v1/sessions HTTP/1.1\r\nHost: cp\r\nContent-Type: application/json\r\n",
        b"POST /v1/sessions HTTP/1.1\r\nHost: cp\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"client_id":',
        b"POST /v1/agents/events HTTP/1.1\r\nHost: cp\r\nTransfer-Encoding: chunked\r\n"
        b'Content-Type: application/json\r\n\r\n10\r\n{"type":',
    ],
)
def test_partial_requests_cut_off_leave_no_trace(plane: Plane, partial: bytes) -> None:
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", plane.port), timeout=5) as sock:
            sock.sendall(partial)  # and gone
    assert requests.get(plane.url + "/healthz", timeout=5).status_code == 200
    # The module fixture asserts no traceback and no error line at the end.
