"""`streamfleet up --prometheus`: a real Prometheus (Debian's) scraping every part.

Static targets: the control plane, and per region the router's metrics
listener, the pool manager and the coturn exporter. Agents come and go with
the instances, so they are a file_sd target list the launcher rewrites after
each fleet change (atomically: Prometheus never reads half a file).

The config is written as JSON, which YAML (Prometheus's format) accepts as is.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nginx_lua.process import http_ok
from simulators.local_stack.plan import RegionPlan, StackPlan
from streamfleet.localproc import ManagedProcess

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_INTERVAL = "2s"  # short, so a fresh local stack has data within seconds


def rules_file() -> Path:
    """The alert rules shipped in the repo (deploy/prometheus/alerts.yml)."""
    return Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def _job(name: str, targets: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    return {
        "job_name": name,
        "static_configs": [{"targets": [t], "labels": labels} for t, labels in targets],
    }


def scrape_config(plan: StackPlan, agents_file: Path, rules: Path | None) -> dict[str, Any]:
    """The whole prometheus.yml for this stack (pure)."""

    def per_region(port_of: str) -> list[tuple[str, dict[str, str]]]:
        return [(f"127.0.0.1:{getattr(r, port_of)}", {"region": r.name}) for r in plan.regions]

    config: dict[str, Any] = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            _job("control-plane", [(f"127.0.0.1:{plan.control_plane_port}", {})]),
            _job("router", per_region("router_metrics_port")),
            _job("pool-manager", per_region("pool_metrics_port")),
            _job("coturn", per_region("turn_metrics_port")),
            {
                "job_name": "agent",
                "file_sd_configs": [{"files": [str(agents_file)], "refresh_interval": "2s"}],
            },
        ],
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    return config


def agent_targets(plan: StackPlan, instances: Iterable[Any]) -> list[dict[str, Any]]:
    """file_sd entries, one per running agent (`region`, `instance_id`, `private_ip`)."""
    return [
        {
            "targets": [f"{i.private_ip}:{plan.agent_metrics_port}"],
            "labels": {"region": i.region, "instance_id": i.instance_id},
        }
        for i in sorted(instances, key=lambda i: i.instance_id)
    ]


def write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


class PrometheusSetup:
    """Where this stack's Prometheus keeps its config, targets and data."""

    def __init__(self, plan: StackPlan) -> None:
        self.plan = plan
        self.dir = plan.workdir / "prometheus"
        self.config = self.dir / "prometheus.yml"
        self.agents_file = self.dir / "agents.json"
        self._last: list[dict[str, Any]] | None = None

    def write(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        rules = rules_file()
        config = scrape_config(self.plan, self.agents_file, rules if rules.exists() else None)
        write_json_atomic(self.config, config)
        if not self.agents_file.exists():
            write_json_atomic(self.agents_file, [])

    def update_agents(self, instances: Iterable[Any]) -> None:
        targets = agent_targets(self.plan, instances)
        if targets != self._last:
            write_json_atomic(self.agents_file, targets)
            self._last = targets

    def start(self) -> ManagedProcess:
        self.write()
        proc = ManagedProcess(
            name="prometheus",
            argv=[
                PROMETHEUS,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.plan.prometheus_port}",
                "--storage.tsdb.retention.time=1d",
            ],
            log_path=self.plan.workdir / "prometheus.log",
        ).start()
        proc.wait_ready(lambda: http_ok(self.plan.prometheus_url + "/-/ready"), timeout=30)
        return proc


def start_turn_exporter(plan: StackPlan, r: RegionPlan, turn_log: Path) -> ManagedProcess:
    """The coturn exporter of one region (coturn itself runs with -v for it)."""
    proc = ManagedProcess(
        name=f"coturn-exporter:{r.name}",
        argv=[
            sys.executable, "-m", "regional_stack.coturn.exporter", "--log", str(turn_log),
            "--listen", f"127.0.0.1:{r.turn_metrics_port}", "--turn-port", str(r.turn_port),
        ],
        log_path=plan.workdir / "coturn" / r.name / "exporter.log",
    ).start()  # fmt: skip
    proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{r.turn_metrics_port}/metrics"), timeout=15)
    return proc
