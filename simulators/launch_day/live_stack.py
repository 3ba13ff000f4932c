"""The stack of the live launch-day replay: the chaos stack (control-plane replicas
behind a balancer, Redis single or with Sentinel, moto, routers, pool managers)
with a simulated fleet and every duration of the scenario divided by `speed`.

Time compression: the control plane, the pool managers and the fleet run on
wall-clock time, so the scenario's durations (lead times, pool manager
interval, cooldown, queue timeout) are divided by the speed factor; the
agents' heartbeat interval cannot shrink as much (the fleet's heartbeats
are the control plane's main load), see `LiveTimings`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from bench.chaos_stack import ChaosStack, Timings
from control_plane.settings import ControlPlaneSettings
from simulators.launch_day.live_capacity import CapacityFront
from simulators.launch_day.live_fleet import SimFleet
from simulators.launch_day.scenario import Scenario
from simulators.local_aws import fake_aws_environment
from simulators.local_stack.launcher import Progress
from simulators.local_stack.plan import StackPlan
from streamfleet.localproc import ManagedProcess
from streamfleet.tokens import parse_keyring

POLICIES = ("static", "buffer", "predictive")


@dataclass(frozen=True)
class PoolConfig:
    policy: str  # static | buffer | predictive (the pool manager's policy names)
    static_count: dict[str, int]  # per region, for `static`
    buffer_size: int = 5
    buffer_percent: float = 10.0
    max_size: int = 600


def live_timings(speed: float) -> Timings:
    """Broker timings for a replay at `speed`: heartbeats every 2 s of wall time
    (500 agents: 250 heartbeats a second), claims held long enough for a polling
    user to connect."""
    return Timings(
        claim_ttl_s=10.0,
        heartbeat_interval_s=2.0,
        missed_heartbeats=3,
        reconnect_window_s=5.0,
        reaper_interval_s=0.5,
    )


class LaunchStack(ChaosStack):
    def __init__(
        self,
        plan: StackPlan,
        progress: Progress,
        *,
        replicas: int,
        scenario: Scenario,
        speed: float,
        pool: PoolConfig,
        via_router: bool = True,
    ) -> None:
        super().__init__(plan, progress, replicas=replicas, timings=live_timings(speed))
        self.scenario = scenario
        self.speed = speed
        self.pool = pool
        self.fleet = SimFleet(
            plan,
            f"http://127.0.0.1:{plan.moto_port}",
            self.signer,
            boot_s=0.5,  # the pool the day starts with is up already (see `day_begins`)
            boot_jitter=scenario.lead_jitter,
        )
        self.sim_fleet: SimFleet = self.fleet
        if via_router:  # each instance listens on its address, as the router expects
            self.sim_fleet.signal_port = plan.agent_port
            self.sim_fleet.token_keys = parse_keyring({"k1": plan.token_key})
        # The pool managers reach moto through it: capacity errors on demand.
        self.capacity = CapacityFront(f"http://127.0.0.1:{plan.moto_port}").start()

    def day_begins(self) -> None:
        """From now on an instance the pool manager launches takes the scenario's lead
        time: a warm-pool start (the model's launches are warm ones: its warm pool is
        prepared up to the group's maximum) or, without a warm pool, a cold launch."""
        sc = self.scenario
        self.sim_fleet.boot_s = (sc.warm_lead_s if sc.warm_pool else sc.cold_lead_s) / self.speed

    def control_plane_settings(self, geoip: Any) -> ControlPlaneSettings:
        base = super().control_plane_settings(geoip)
        sc = self.scenario
        return base.model_copy(
            update={
                # The chaos bed's timings, with the scenario's clock on top.
                "broker": base.broker.model_copy(
                    update={
                        "queue_timeout_s": max(5.0, sc.queue_timeout_s / self.speed),
                        "avg_session_s": max(1.0, sc.mean_session_s / self.speed),
                    }
                ),
                # The users' geography comes in X-Forwarded-For from the loopback "proxy".
                "trusted_proxies": ["127.0.0.0/8"],
                "geography_relax_after_s": 30.0 / self.speed,
            }
        )

    def _start_pool_manager(self, r: Any) -> ManagedProcess:
        sc, pool, speed = self.scenario, self.pool, self.speed
        env = {**os.environ, **fake_aws_environment()}
        env.update({
            "STREAMFLEET_POOL_CONTROL_PLANE_URL": self.plan.control_plane_url,
            "STREAMFLEET_POOL_ADMIN_TOKEN": self.plan.admin_token,
            "STREAMFLEET_POOL_REGION": r.name,
            "STREAMFLEET_POOL_METRICS_PORT": str(r.pool_metrics_port),
            "STREAMFLEET_POOL_AWS_ENDPOINT_URL": self.capacity.url,
            "STREAMFLEET_POOL_POLICY": pool.policy,
            "STREAMFLEET_POOL_STATIC_COUNT": str(pool.static_count.get(r.name, r.pool_size)),
            "STREAMFLEET_POOL_BUFFER_SIZE": str(pool.buffer_size),
            "STREAMFLEET_POOL_BUFFER_PERCENT": str(pool.buffer_percent),
            "STREAMFLEET_POOL_MIN_SIZE": str(r.pool_size),
            "STREAMFLEET_POOL_MAX_SIZE": str(pool.max_size),
            # A pass costs moto a few describes: not faster than every 0.5 s.
            "STREAMFLEET_POOL_INTERVAL_S": str(max(0.5, sc.tick_s / speed)),
            "STREAMFLEET_POOL_SCALE_IN_COOLDOWN_S": str(max(1.0, 300.0 / speed)),
            "STREAMFLEET_POOL_COLD_LEAD_S": str(sc.cold_lead_s / speed),
            "STREAMFLEET_POOL_WARM_LEAD_S": str(sc.warm_lead_s / speed),
            "STREAMFLEET_POOL_CONSTRAINT_HOLD_S": str(max(1.0, 120.0 / speed)),
        })  # fmt: skip
        return ManagedProcess(
            name=f"pool-manager:{r.name}",
            argv=[sys.executable, "-m", "streamfleet.cli", "pool-manager", "--region", r.name],
            log_path=self.plan.workdir / f"pool-manager-{r.name}.log", env=env,
        ).start()  # fmt: skip

    def stop(self) -> None:
        super().stop()
        self.capacity.stop()
