"""Ops can watch every part: `streamfleet up --prometheus` on one region, a real
Prometheus (Debian's) scraping the control plane, the agent, the pool manager,
the router and coturn's exporter; the Grafana dashboard's every query answered
by that Prometheus; one session's id in the control plane's, the agent's and
the router's logs, and no secret in any log."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulators.local_stack.testing import running_stack

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "streamfleet.json"
PARTS = {"control-plane", "agent", "pool-manager", "router", "coturn"}
# Grafana's variables, as the dashboard is used: every region, a 1-minute rate window.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$region": ".*"}


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def query(prometheus: str, promql: str) -> Any:
    return get_json(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))


def poll(check: Any, *, what: str, timeout: float) -> Any:
    """Poll `check()` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("observed-stack")
    with running_stack(
        "--regions", "eu-central-1", "--pool-size", "1", "--prometheus", workdir=workdir
    ) as info:
        yield info


async def drive_one_session(info: dict[str, Any]) -> dict[str, Any]:
    """Create a session, open its signalling through the router, end it; plus one refusal."""
    cp = info["control_plane_url"]
    async with aiohttp.ClientSession() as http:
        body = {"client_id": "obs-e2e-1", "model": "roadster", "configuration": {}}
        async with http.post(cp + "/v1/sessions", json=body) as resp:
            assert resp.status == 201, await resp.text()
            session = await resp.json()
        stream = session["stream"]
        async with http.get(stream["url"] + "healthz") as resp:  # no token: refused
            assert resp.status == 403
        async with http.ws_connect(stream["signaling_url"] + "?token=" + stream["token"]) as ws:
            first = json.loads((await ws.receive(timeout=10)).data)
            assert first["type"] == "config"
            await ws.send_str(json.dumps({"type": "listStreamers"}))
            while json.loads((await ws.receive(timeout=10)).data)["type"] != "streamerList":
                pass
            await ws.send_str(json.dumps({"type": "stats", "data": {"inputToFrameMs": 42}}))
        headers = {"Authorization": "Bearer " + session["session_secret"]}
        async with http.delete(cp + "/v1/sessions/" + session["session_id"], headers=headers) as r:
            assert r.status == 200
    return dict(session)


@pytest.fixture(scope="module")
def session(stack: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(drive_one_session(stack))


def test_prometheus_scrapes_every_part_with_all_targets_up(stack: dict[str, Any]) -> None:
    prometheus = stack["prometheus_url"]

    def all_up() -> dict[str, str] | None:
        targets = get_json(prometheus + "/api/v1/targets")["data"]["activeTargets"]
        health = {f"{t['labels']['job']} {t['scrapeUrl']}": t["health"] for t in targets}
        jobs = {t["labels"]["job"] for t in targets}
        return health if jobs == PARTS and all(h == "up" for h in health.values()) else None

    health = poll(all_up, what="every part scraped and up", timeout=60)
    assert len(health) == len(PARTS)  # one region, one instance: one target per part
    ups = query(prometheus, "up")["data"]["result"]
    assert {r["metric"]["job"] for r in ups} == PARTS
    assert all(r["value"][1] == "1" for r in ups), ups
    # The repo's alert rules are loaded and evaluate without errors.
    rules = get_json(prometheus + "/api/v1/rules")["data"]["groups"]
    names = {r["name"]: r["health"] for g in rules for r in g["rules"]}
    assert "StreamfleetRedisUnreachable" in names
    assert set(names.values()) == {"ok"}, names


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"unknown Grafana variable in {target['expr']!r}"
            found.append((panel["title"], expr))
    return found


def test_every_dashboard_query_answers_from_the_live_stack(
    stack: dict[str, Any], session: dict[str, Any]
) -> None:
    prometheus = stack["prometheus_url"]
    queries = dashboard_queries()
    assert len(queries) >= 20

    def unanswered() -> list[str]:
        names = set(get_json(prometheus + "/api/v1/label/__name__/values")["data"])
        missing = []
        for title, expr in queries:
            unknown = set(re.findall(r"\b(streamfleet_[a-z0-9_]+)", expr)) - names
            answer = query(prometheus, expr)
            assert answer["status"] == "success", (title, answer)
            if unknown:
                missing.append(f"{title}: no such metric scraped: {', '.join(sorted(unknown))}")
            elif not answer["data"]["result"]:
                missing.append(f"{title}: {expr}")
        return missing

    # The session's traffic shows after the next scrapes (rates need two): poll.
    deadline = time.monotonic() + 60
    missing = unanswered()
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = unanswered()
    assert not missing, "queries with no series:\n" + "\n".join(missing)


def test_the_agent_counts_the_session(stack: dict[str, Any], session: dict[str, Any]) -> None:
    prometheus = stack["prometheus_url"]

    def seen() -> bool:
        got = query(
            prometheus,
            'sum(streamfleet_agent_session_events_total{event="client_connected"})'
            " + sum(streamfleet_agent_input_to_frame_seconds_count)"
            ' + sum(streamfleet_agent_player_connections_total{outcome="accepted"})',
        )["data"]["result"]
        return bool(got) and float(got[0]["value"][1]) >= 3

    poll(seen, what="the agent's session counters", timeout=30)


def test_one_session_id_in_every_part_log_and_no_secret(
    stack: dict[str, Any], session: dict[str, Any]
) -> None:
    workdir = Path(stack["workdir"])
    sid = session["session_id"]

    def json_lines(path: Path) -> list[dict[str, Any]]:
        out = []
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def story() -> dict[str, list[str]] | None:
        cp = [e.get("state", "") for e in json_lines(workdir / "control-plane.log")
              if e.get("session_id") == sid]  # fmt: skip
        agent = [e["message"] for p in (workdir / "agents").glob("*.log")
                 for e in json_lines(p) if e.get("session_id") == sid]  # fmt: skip
        router = [str(e["status"]) for p in (workdir / "routers").glob("*/logs/access.log")
                  for e in json_lines(p) if e.get("session_id") == sid]  # fmt: skip
        found = {"control-plane": cp, "agent": agent, "router": router}
        done = "ended" in cp and any("ended" in m for m in agent) and "101" in router
        return found if done else None

    found = poll(story, what=f"session {sid} in every part's log", timeout=30)
    # Each state change once: assigned, connected (agent report), ended.
    assert found["control-plane"].count("assigned") == 1
    assert found["control-plane"].count("ended") == 1
    assert sum("session assigned" in m for m in found["agent"]) == 1
    assert sum("client_connected" in m for m in found["agent"]) == 1
    # Every Python part writes JSON lines.
    for log in [workdir / "control-plane.log", workdir / "launcher.log",
                *workdir.glob("pool-manager-*.log"), *(workdir / "agents").glob("*.log")]:  # fmt: skip
        assert json_lines(log), f"{log} has no JSON log lines"
    # No secret in any log: the session secret, the stream token, the TURN
    # credential, the admin token.
    secrets = [session["session_secret"], session["stream"]["token"], stack["admin_token"]]
    secrets += [s["credential"] for s in session["ice_servers"] if "credential" in s]
    for path in workdir.rglob("*.log"):
        if path == workdir / "up.log":
            continue  # the terminal transcript: `up` prints the admin token for its user
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {path}"
