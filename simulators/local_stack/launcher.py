"""Start, supervise and stop every process of the local stack, in order."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from control_plane.settings import ControlPlaneSettings, RegionConfig
from nginx_lua.process import http_ok, start_nginx, stop_nginx
from nginx_lua.render import RouterSettings, render_router
from regional_stack.coturn.local import start_coturn
from simulators.geoip_db import write_city_db
from simulators.imds import IdentitySigner, LocalImds
from simulators.local_aws import create_regional_stack, fake_aws_environment
from simulators.local_stack.failure import ChildFailed
from simulators.local_stack.fleet import Fleet
from simulators.local_stack.plan import StackPlan
from simulators.local_stack.prometheus import PrometheusSetup, start_turn_exporter
from streamfleet.localproc import ManagedProcess, port_open, start_redis
from streamfleet.sentinel_group import MASTER as SENTINEL_MASTER
from streamfleet.sentinel_group import NodeRestart, start_sentinel, start_sentinel_group
from streamfleet.wire import PoolsView

log = logging.getLogger("streamfleet.up")
Progress = Callable[[str], None]


class PortInUse(RuntimeError):
    pass


def _pools(control_plane_url: str, token: str) -> PoolsView:
    request = urllib.request.Request(
        control_plane_url + "/v1/pools", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=2) as resp:
        return PoolsView.model_validate_json(resp.read())


def web_dir() -> Path:
    """The web pages: the `streamfleet_web` data package (the repository's web/ folder).

    Found by its import spec, not `importlib.resources.files`: in an editable install
    the data package is a namespace package whose path also holds the editable
    finder's placeholder entry, which `files()` refuses.
    """
    spec = importlib.util.find_spec("streamfleet_web")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    source = Path(__file__).resolve().parents[2] / "web"  # run from a checkout, uninstalled
    if source.is_dir():
        return source
    raise FileNotFoundError("the web pages (package streamfleet_web) are not installed")


def redact_url(url: str) -> str:
    """url without the credentials before its host."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.split("@")[-1] if sep else url


class LocalStack:
    def __init__(self, plan: StackPlan, progress: Progress) -> None:
        self.plan = plan
        self.say = progress
        self.core: list[tuple[ManagedProcess, Callable[[], ManagedProcess | None]]] = []
        # The cloud's identity-document signer and its metadata service: agents
        # prove their instance with its documents (docs/agent-identity.md).
        self.signer = IdentitySigner()
        self.imds: LocalImds | None = None
        self.fleet = Fleet(plan, f"http://127.0.0.1:{plan.moto_port}", self.signer)
        self.redis_url = (
            plan.redis_url or f"redis://:{plan.redis_password}@127.0.0.1:{plan.redis_port}/0"
        )
        self.prometheus = PrometheusSetup(plan) if plan.prometheus else None
        self.started = False  # until the warm pools are ready

    # -- start ------------------------------------------------------------------

    def _keep(self, start: Callable[[], ManagedProcess]) -> ManagedProcess:
        """Start a core process and remember how, so the supervisor can restart it."""
        proc = start()
        self.core.append((proc, start))
        return proc

    def check_ports(self) -> None:
        busy = [p for p in self.plan.all_ports if port_open("127.0.0.1", p)]
        if busy:
            raise PortInUse(
                f"port(s) {', '.join(map(str, busy))} already in use on 127.0.0.1; pass --base-port"
            )

    def control_plane_settings(self, geoip: Path) -> ControlPlaneSettings:
        p = self.plan
        sentinel = p.redis_url is None and p.redis_mode == "sentinel"
        return ControlPlaneSettings(
            http_port=p.control_plane_port,
            redis_url=self.redis_url,
            redis_sentinels=[f"127.0.0.1:{port}" for port in p.sentinel_ports] if sentinel else [],
            redis_sentinel_password=p.redis_password if sentinel else "",
            regions=[
                RegionConfig(
                    name=r.name,
                    geography=r.geography,
                    lat=r.lat,
                    lon=r.lon,
                    router_url=r.router_url,
                    turn_uris=[f"turn:127.0.0.1:{r.turn_port}?transport=udp"],
                    private_cidrs=[r.cidr],
                )
                for r in p.regions
            ],
            agent_identity_keys=dict.fromkeys(
                (r.name for r in p.regions), self.signer.public_pem()
            ),
            agent_token_key=p.agent_token_key,
            ec2_endpoint_url=f"http://127.0.0.1:{p.moto_port}",
            token_keys={"k1": p.token_key},
            turn_secret=p.turn_secret,
            agent_secrets=p.agent_secrets,
            admin_token=p.admin_token,
            geoip_db=geoip,
            demo_visit_from=p.demo_visit_from,
            web_dir=web_dir(),
        )

    async def start(self, ready_timeout: float = 180.0) -> dict[str, Any]:
        p, work = self.plan, self.plan.workdir
        work.mkdir(parents=True, exist_ok=True)
        self.check_ports()
        if p.redis_url is None and p.redis_mode == "sentinel":
            self._start_sentinel_group()
        elif p.redis_url is None:
            self.say(f"starting redis on 127.0.0.1:{p.redis_port}")
            self._keep(lambda: start_redis(p.redis_port, work / "redis", password=p.redis_password))
        else:
            self.say(f"using redis at {p.redis_url.split('@')[-1]}")
        self.say(f"starting moto (local AWS) on 127.0.0.1:{p.moto_port}")
        self._keep(self._start_moto)
        for i, r in enumerate(p.regions):
            self.say(f"  {r.name}: VPC, subnets, launch template, Auto Scaling group")
            await asyncio.to_thread(
                create_regional_stack,
                f"http://127.0.0.1:{p.moto_port}",
                r.name,
                cidr_second_octet=10 + i,
                cidr_prefix=f"127.{r.octet}",
            )
        self.say(f"starting the instance metadata service (identity documents) on :{p.imds_port}")
        self.imds = LocalImds(self.signer, p.imds_port).start()
        self.fleet.imds = self.imds
        geoip = write_city_db(work / "city.mmdb")
        settings = self.control_plane_settings(geoip)
        self.say(f"starting the control plane on {p.control_plane_url}")
        self._keep(lambda: self._start_control_plane(settings))
        for r in p.regions:
            self.say(
                f"  {r.name}: coturn :{r.turn_port}, router {r.router_url}, pool manager ({p.policy}, {r.pool_size} hot)"
            )
            self._keep(lambda r=r: start_coturn(  # type: ignore[misc]
                port=r.turn_port, secret=p.turn_secret, workdir=work / "coturn" / r.name,
                min_port=r.relay_ports[0], max_port=r.relay_ports[1], verbose=p.prometheus,
            ))  # fmt: skip
            if p.prometheus:
                turn_log = work / "coturn" / r.name / "turnserver.log"
                self._keep(lambda r=r, f=turn_log: start_turn_exporter(p, r, f))  # type: ignore[misc]
            self._keep(lambda r=r: self._start_router(r))  # type: ignore[misc]
            self._keep(lambda r=r: self._start_pool_manager(r))  # type: ignore[misc]
        if self.prometheus is not None:
            self.say(f"starting prometheus on {p.prometheus_url}")
            self._keep(self.prometheus.start)
        await self._wait_for_instances(ready_timeout)
        # From now on a crashed child is restarted (and said), as a supervisor would.
        self.fleet.restart_crashed = True
        self.started = True
        return self.ready_info()

    def _start_sentinel_group(self) -> None:
        """Primary, replica and three sentinels; each restarts alone if it dies (a restarted
        node rejoins as the sentinels' replica, a restarted sentinel keeps its config)."""
        p, work = self.plan, self.plan.workdir / "redis"
        self.say(
            f"starting redis primary :{p.redis_port}, replica :{p.redis_replica_port}, "
            f"sentinels :{','.join(map(str, p.sentinel_ports))} (master {SENTINEL_MASTER})"
        )
        group = start_sentinel_group(
            work, [p.redis_port, p.redis_replica_port], p.sentinel_ports, p.redis_password
        )
        for port, proc in group.nodes.items():
            self.core.append((proc, NodeRestart(
                port, work / str(port), tuple(p.sentinel_ports), p.redis_password,
            )))  # fmt: skip
        for port, proc in group.sentinels.items():
            self.core.append((proc, lambda port=port: start_sentinel(  # type: ignore[misc]
                port, work / f"sentinel-{port}", p.redis_port, p.redis_password,
            )))  # fmt: skip

    def redis_info(self) -> dict[str, Any]:
        """How to reach Redis (no password: that stays in the owner-only config files)."""
        p = self.plan
        if p.redis_url is None and p.redis_mode == "sentinel":
            return {
                "mode": "sentinel",
                "master": SENTINEL_MASTER,
                "sentinels": [f"127.0.0.1:{port}" for port in p.sentinel_ports],
                "nodes": [f"127.0.0.1:{port}" for port in (p.redis_port, p.redis_replica_port)],
            }
        return {"mode": "single", "url": redact_url(self.redis_url)}

    async def _sync_fleet(self) -> list[str]:
        changes = await self.fleet.sync()
        if self.prometheus is not None:
            self.prometheus.update_agents(self.fleet.instances.values())
        return changes

    def _start_moto(self) -> ManagedProcess:
        moto = str(Path(sys.executable).with_name("moto_server"))
        proc = ManagedProcess(
            name="moto", argv=[moto, "-H", "127.0.0.1", "-p", str(self.plan.moto_port)],
            log_path=self.plan.workdir / "moto.log", env={**os.environ, **fake_aws_environment()},
        ).start()  # fmt: skip
        proc.wait_ready(lambda: port_open("127.0.0.1", self.plan.moto_port), timeout=30)
        return proc

    def _start_control_plane(self, settings: ControlPlaneSettings) -> ManagedProcess:
        env = {**os.environ, **fake_aws_environment(), **settings.to_env()}
        proc = ManagedProcess(
            name="control-plane", argv=[sys.executable, "-m", "streamfleet.cli", "control-plane"],
            log_path=self.plan.workdir / "control-plane.log", env=env,
        ).start()  # fmt: skip
        url = self.plan.control_plane_url + "/healthz"
        proc.wait_ready(lambda: http_ok(url), timeout=30)
        return proc

    def _start_router(self, r: Any) -> ManagedProcess:
        prefix = self.plan.workdir / "routers" / r.name
        prefix.mkdir(parents=True, exist_ok=True)
        key_file = prefix / "keys.json"
        key_file.write_text(json.dumps({"k1": self.plan.token_key}))
        key_file.chmod(0o600)
        conf = render_router(
            prefix,
            RouterSettings(
                region=r.name, listen=f"127.0.0.1:{r.router_port}", region_cidr=r.cidr,
                agent_port=self.plan.agent_port, key_file=key_file, worker_processes="1",
                metrics_listen=f"127.0.0.1:{r.router_metrics_port}",
            ),
        )  # fmt: skip
        return start_nginx(
            prefix, conf, ready_url=f"{r.router_url}/healthz", name=f"router:{r.name}"
        )

    def _start_pool_manager(self, r: Any) -> ManagedProcess:
        env = {**os.environ, **fake_aws_environment()}
        env.update({
            "STREAMFLEET_POOL_CONTROL_PLANE_URL": self.plan.control_plane_url,
            "STREAMFLEET_POOL_ADMIN_TOKEN": self.plan.admin_token,
            "STREAMFLEET_POOL_REGION": r.name,
            "STREAMFLEET_POOL_METRICS_PORT": str(r.pool_metrics_port),
            "STREAMFLEET_POOL_AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.plan.moto_port}",
            "STREAMFLEET_POOL_POLICY": self.plan.policy,
            "STREAMFLEET_POOL_STATIC_COUNT": str(r.pool_size),
            "STREAMFLEET_POOL_BUFFER_SIZE": str(r.pool_size),
            "STREAMFLEET_POOL_MAX_SIZE": "20",
            "STREAMFLEET_POOL_INTERVAL_S": "2",
            "STREAMFLEET_POOL_SCALE_IN_COOLDOWN_S": "20",
            "STREAMFLEET_POOL_COLD_LEAD_S": "5",
            "STREAMFLEET_POOL_WARM_LEAD_S": "3",
        })  # fmt: skip
        return ManagedProcess(
            name=f"pool-manager:{r.name}",
            argv=[sys.executable, "-m", "streamfleet.cli", "pool-manager", "--region", r.name],
            log_path=self.plan.workdir / f"pool-manager-{r.name}.log", env=env,
        ).start()  # fmt: skip

    async def _wait_for_instances(self, timeout: float) -> None:
        wanted = {r.name: r.pool_size for r in self.plan.regions}
        self.say(f"waiting for warm instances: {', '.join(f'{k} {v}' for k, v in wanted.items())}")
        deadline = asyncio.get_running_loop().time() + timeout
        shown = ""
        while True:
            for change in await self._sync_fleet():
                self.say("  " + change)
            self.check_core_alive()
            pools = await asyncio.to_thread(
                _pools, self.plan.control_plane_url, self.plan.admin_token
            )
            ready = {r: pools.regions[r].count("ready") for r in wanted}
            line = ", ".join(f"{r} {ready[r]}/{n}" for r, n in wanted.items())
            if line != shown:
                self.say(f"  ready: {line}")
                shown = line
            if all(ready[r] >= n for r, n in wanted.items()):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(
                    f"instances not ready after {timeout:.0f} s ({line}); logs in {self.plan.workdir}"
                )
            await asyncio.sleep(0.5)

    def ready_info(self) -> dict[str, Any]:
        p = self.plan
        return {
            "control_plane_url": p.control_plane_url,
            "configurator_url": f"{p.control_plane_url}/web/configurator/index.html",
            "status_url": f"{p.control_plane_url}/web/status/index.html#token={p.admin_token}",
            "admin_token": p.admin_token,
            "regions": {r.name: r.router_url for r in p.regions},
            "turn": {r.name: f"turn:127.0.0.1:{r.turn_port}?transport=udp" for r in p.regions},
            # Without its password (that stays in the owner-only redis config file).
            "redis_url": redact_url(self.redis_url),
            "redis": self.redis_info(),
            "moto_url": f"http://127.0.0.1:{p.moto_port}",
            "workdir": str(p.workdir),
            "demo_visit_from": p.demo_visit_from,
            **({"prometheus_url": p.prometheus_url} if p.prometheus else {}),
        }

    # -- run --------------------------------------------------------------------

    def check_core_alive(self) -> None:
        """Restart a core process that died; while starting, fail with its log instead."""
        for i, (proc, start) in enumerate(self.core):
            if not proc.alive():
                if not self.started:
                    code = proc.popen.returncode if proc.popen else None
                    raise ChildFailed(proc.name, code, str(proc.log_path), proc.log_tail())
                restarted = start()
                if restarted is None:  # not yet (a Redis node waits for its failover)
                    continue
                self.say(f"{proc.name} exited; restarted it (log: {proc.log_path})")
                self.core[i] = (restarted, start)

    async def supervise(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                for change in await self._sync_fleet():
                    self.say(change)
                self.check_core_alive()
            except Exception as exc:  # keep supervising; say what happened
                self.say(f"supervisor: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    def stop(self) -> None:
        """Agents first (they end sessions), then everything else in reverse start order."""
        self.say("stopping agents")
        self.fleet.stop_all()
        if self.imds is not None:
            self.imds.stop()
            self.imds = None
        for proc, _ in reversed(self.core):
            self.say(f"stopping {proc.name}")
            if proc.name.startswith("router:"):
                stop_nginx(proc)
            else:
                proc.stop()
        self.core.clear()

    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.core if proc.alive()] + self.fleet.pids()
