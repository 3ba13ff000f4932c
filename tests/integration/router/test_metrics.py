"""The router's Prometheus metrics: counted by every worker into one shared dict,
served in the text format on a separate loopback listener, never on the public one."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nginx_lua.process import stop_nginx
from streamfleet.localproc import free_port
from tests.integration.router.conftest import (
    INSTANCE_IP,
    Router,
    Upstream,
    make_token,
    start_router,
    workdir,
)


@pytest.fixture(scope="module")
def metered(upstream: Upstream) -> Iterator[tuple[Router, str]]:
    port = free_port()
    r = start_router(
        workdir("router-metrics"), upstream, workers="2", metrics_listen=f"127.0.0.1:{port}"
    )
    try:
        yield r, f"http://127.0.0.1:{port}/metrics"
    finally:
        stop_nginx(r.process)
    assert not r.unexpected_errors()
    shutil.rmtree(r.prefix.parent, ignore_errors=True)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def scrape(url: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streamfleet_router_requests_total":
                counts[sample.labels["status"], sample.labels["reason"]] = sample.value
    return counts


def test_requests_are_counted_by_status_and_reason(metered: tuple[Router, str]) -> None:
    router, metrics_url = metered
    before = scrape(metrics_url)
    token = make_token(INSTANCE_IP)
    # Enough requests that both workers take some (each has its own Lua VM).
    for _ in range(10):
        assert status_of(f"{router.base}/i/{INSTANCE_IP}/hello?token={token}") == 200
    for _ in range(3):
        assert status_of(f"{router.base}/i/{INSTANCE_IP}/hello") == 403
    assert status_of(f"{router.base}/i/10.9.8.7/x") == 404
    expected = {("200", ""): 10, ("403", "no_token"): 3, ("404", "outside_region"): 1}
    # nginx counts in the log phase, after the answer is sent: poll, with a deadline.
    deadline = time.monotonic() + 5
    while True:
        after = scrape(metrics_url)
        got = {k: after.get(k, 0) - before.get(k, 0) for k in expected}
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got == expected


def test_metrics_are_not_on_the_public_listener(metered: tuple[Router, str]) -> None:
    router, metrics_url = metered
    assert status_of(f"{router.base}/metrics") == 404
    with urllib.request.urlopen(metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"streamfleet_router_requests", "streamfleet_router_connections"} <= families
