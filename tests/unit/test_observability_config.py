"""Pure parts of the observability wiring: Prometheus's scrape config and the
coturn exporter's log reading (on lines coturn 4.6.1 -v really writes)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from regional_stack.coturn.exporter import TurnStats
from simulators.local_stack.plan import make_plan
from simulators.local_stack.prometheus import agent_targets, scrape_config

# Captured from `turnserver -n -v ... --simple-log` with turnutils_uclient.
COTURN_LINES = """\
1: : session 000000000000000001: realm <streamfleet> user <>: incoming packet message processed, error 401: Unauthorized
1: : session 000000000000000001: new, realm=<streamfleet>, username=<1796207335:sess1>, lifetime=777
1: : session 000000000000000001: realm <streamfleet> user <1796207335:sess1>: incoming packet ALLOCATE processed, success
1: : session 000000000000000002: new, realm=<streamfleet>, username=<1796207335:sess1>, lifetime=777
6: : session 000000000000000005: realm <streamfleet> user <1796207341:sess2>: incoming packet message processed, error 401: Unauthorized
6: : ERROR: check_stun_auth: Cannot find credentials of user <1796207341:sess2>
7: : session 001000000000000001: usage: realm=<streamfleet>, username=<1796207335:sess1>, rp=10, rb=1116, sp=10, sb=916
7: : session 001000000000000001: peer usage: realm=<streamfleet>, username=<1796207335:sess1>, rp=2, rb=200, sp=2, sb=200
7: : session 001000000000000001: closed (2nd stage), user <1796207335:sess1> realm <streamfleet> origin <>, local 127.0.0.1:44010, remote 127.0.0.1:54411, reason: allocation timeout
"""


def test_turn_stats_from_coturn_log_lines() -> None:
    stats = TurnStats()
    for line in COTURN_LINES.splitlines():
        stats.feed(line)
    assert stats.allocations == 2
    assert stats.closed == 1
    assert stats.active == 1
    # The handshake's first 401 (user <>) is normal; the named user's is a refusal.
    assert stats.auth_failures == 1
    # Client-side usage only, not the peer's.
    assert (stats.received_bytes, stats.sent_bytes) == (1116, 916)
    assert stats.lines == len(COTURN_LINES.splitlines())


def test_scrape_config_covers_every_part_of_every_region(tmp_path: Path) -> None:
    plan = make_plan(
        workdir=tmp_path, regions=["eu-central-1", "us-east-1"], pool_sizes={"*": 1},
        base_port=30000, redis_url=None, demo_visit_from=False, prometheus=True,
    )  # fmt: skip
    config = scrape_config(plan, tmp_path / "agents.json", tmp_path / "alerts.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"control-plane", "router", "pool-manager", "coturn", "agent"}
    assert jobs["control-plane"]["static_configs"][0]["targets"] == ["127.0.0.1:30000"]
    routers = {c["labels"]["region"]: c["targets"][0] for c in jobs["router"]["static_configs"]}
    assert routers == {"eu-central-1": "127.0.0.1:30050", "us-east-1": "127.0.0.1:30051"}
    assert jobs["agent"]["file_sd_configs"][0]["files"] == [str(tmp_path / "agents.json")]
    assert config["rule_files"] == [str(tmp_path / "alerts.yml")]
    # Every port is the stack's own (follows --base-port) and none collides.
    assert len(set(plan.all_ports)) == len(plan.all_ports)
    assert plan.prometheus_port in plan.all_ports and plan.prometheus_port == 30070
    assert max(plan.all_ports) < 30000 + 100  # below the TURN relay ranges


def test_agent_targets_name_each_instance(tmp_path: Path) -> None:
    plan = make_plan(
        workdir=tmp_path, regions=["eu-west-1"], pool_sizes={"*": 1}, base_port=31000,
        redis_url=None, demo_visit_from=False,
    )  # fmt: skip
    instances = [
        SimpleNamespace(region="eu-west-1", instance_id="i-b", private_ip="127.12.0.2"),
        SimpleNamespace(region="eu-west-1", instance_id="i-a", private_ip="127.12.0.1"),
    ]
    assert agent_targets(plan, instances) == [
        {"targets": ["127.12.0.1:31032"], "labels": {"region": "eu-west-1", "instance_id": "i-a"}},
        {"targets": ["127.12.0.2:31032"], "labels": {"region": "eu-west-1", "instance_id": "i-b"}},
    ]
