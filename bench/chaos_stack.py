"""The stack the chaos run breaks: `streamfleet up` (simulators/local_stack) with
N control-plane replicas sharing its Redis behind a small nginx load balancer.

Everything else is the local stack as `streamfleet up` runs it: Redis without
persistence, moto, the simulated IMDS, per region coturn, the nginx + Lua
router and a pool manager, and one real agent (with its renderer stub) per
instance moto runs. Its supervisor stays on: a core process that dies is
restarted within a second, a crashed agent is rebooted on the same instance
(it registers again with its nonce file), exactly as in `streamfleet up`.

The replicas are not under that supervisor: the faults kill and pause them,
and their "orchestrator" (the fault's heal) brings them back.

Timings are shortened (claim TTL, heartbeats) so that a fault's whole effect,
including what the reaper repairs, fits in a bounded run; the report says
which timings were used.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from control_plane.broker_settings import BrokerSettings
from control_plane.settings import ControlPlaneSettings
from nginx_lua.process import http_ok, start_nginx
from simulators.local_aws import fake_aws_environment
from simulators.local_stack.launcher import LocalStack, Progress
from simulators.local_stack.plan import StackPlan
from streamfleet.localproc import ManagedProcess

REPLICA_PORTS_OFFSET = 80  # base+80.. : free in the plan's port map (see plan.py)


@dataclass(frozen=True)
class Timings:
    claim_ttl_s: float
    heartbeat_interval_s: float
    missed_heartbeats: int
    reconnect_window_s: float
    reaper_interval_s: float

    @property
    def lost_after_s(self) -> float:
        return self.heartbeat_interval_s * self.missed_heartbeats


@dataclass
class Replica:
    port: int
    settings: ControlPlaneSettings
    log_path: Path
    process: ManagedProcess | None = None
    stopped: bool = False  # SIGSTOPped by a fault

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **fake_aws_environment(), **self.settings.to_env()}
        env["STREAMFLEET_HTTP_PORT"] = str(self.port)
        self.process = ManagedProcess(
            name=f"control-plane:{self.port}",
            argv=[sys.executable, "-m", "streamfleet.cli", "control-plane"],
            log_path=self.log_path,
            env=env,
        ).start()
        self.process.wait_ready(lambda: http_ok(self.url + "/healthz"), timeout=30)
        self.stopped = False

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.alive():
            os.kill(self.process.pid, sig)
            self.stopped = sig == signal.SIGSTOP

    def stop(self) -> None:
        if self.process is not None:
            if self.stopped:
                self.signal(signal.SIGCONT)
            self.process.stop()


def balancer_conf(prefix: Path, listen_port: int, replica_ports: list[int]) -> Path:
    """nginx as the replicas' load balancer (what an ALB is in AWS): round robin,
    a replica that refuses connections is skipped (passive health), slow answers
    time out; requests are not retried once sent (as an ALB)."""
    prefix = prefix.resolve()  # nginx reads relative paths in the file against its prefix
    servers = "\n".join(
        f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in replica_ports
    )
    temp = "\n".join(
        f"  {kind}_temp_path {prefix}/tmp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temp}
  upstream replicas {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{listen_port};
    location = /lb-healthz {{ return 200 "ok"; }}
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_connect_timeout 1s;
      proxy_read_timeout 5s;
      proxy_send_timeout 5s;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
    }}
  }}
}}
"""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "balancer.conf"
    conf.write_text(text)
    return conf


class ChaosStack(LocalStack):
    """LocalStack whose "control plane" is N replicas behind a load balancer on the
    control-plane port (agents, pool managers and users all go through it)."""

    def __init__(
        self, plan: StackPlan, progress: Progress, *, replicas: int, timings: Timings
    ) -> None:
        super().__init__(plan, progress)
        self.timings = timings
        self.replica_ports = [
            plan.control_plane_port + REPLICA_PORTS_OFFSET + i for i in range(replicas)
        ]
        self.replicas: list[Replica] = []

    def control_plane_settings(self, geoip: Path) -> ControlPlaneSettings:
        t = self.timings
        base = super().control_plane_settings(geoip)
        return base.model_copy(
            update={
                "broker": BrokerSettings(
                    claim_ttl_s=t.claim_ttl_s,
                    heartbeat_interval_s=t.heartbeat_interval_s,
                    missed_heartbeats=t.missed_heartbeats,
                    reconnect_window_s=t.reconnect_window_s,
                ),
                "reaper_interval_s": t.reaper_interval_s,
                # Every simulated user comes from 127.0.0.1 through the balancer.
                "rate_limit_per_minute": 1_000_000,
                "max_connections_per_ip": 4096,
            }
        )

    def _start_control_plane(self, settings: ControlPlaneSettings) -> ManagedProcess:
        if not self.replicas:
            self.replicas = [
                Replica(port, settings, self.plan.workdir / f"control-plane-{port}.log")
                for port in self.replica_ports
            ]
        for replica in self.replicas:
            if not replica.alive():
                replica.start()
        prefix = self.plan.workdir / "balancer"
        conf = balancer_conf(prefix, self.plan.control_plane_port, self.replica_ports)
        return start_nginx(
            prefix,
            conf,
            ready_url=self.plan.control_plane_url + "/healthz",
            name="control-plane-balancer",
        )

    async def _wait_for_instances(self, timeout: float) -> None:
        """As `streamfleet up`, but a slow answer of the pools API (2 s: the machine
        is shared, three replicas start at once) is asked again, not fatal."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await super()._wait_for_instances(max(1.0, deadline - time.monotonic()))
                return
            except (TimeoutError, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise
                self.say(f"  pools not readable yet ({exc}); asking again")
                await asyncio.sleep(1.0)

    def core_process(self, prefix: str) -> ManagedProcess:
        """The running core process whose name starts with `prefix` (e.g. "redis:")."""
        for proc, _ in self.core:
            if proc.name.startswith(prefix) and proc.alive():
                return proc
        raise LookupError(f"no running core process {prefix!r}")

    def stop(self) -> None:
        super().stop()
        for replica in self.replicas:
            replica.stop()
