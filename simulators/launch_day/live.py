"""`streamfleet simulate launch-day --live`: replay the launch day against the running system.

Starts the stack (simulators/launch_day/live_stack.py), replays the scenario's
arrivals (the same draw as the discrete-event model for the seed) compressed
by `speed`, injects the scheduled faults, samples the pools, then reports
the live figures next to the discrete-event model's for the same seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.chaos_faults import Target
from simulators.launch_day.live_faults import GROUP_MAX, Scheduled, peak_faults, set_group_max
from simulators.launch_day.live_report import Sample, figures, plot
from simulators.launch_day.live_stack import LaunchStack, PoolConfig
from simulators.launch_day.live_users import User, Users
from simulators.launch_day.scenario import Scenario, draw_arrivals, peak_parallel
from simulators.local_stack.plan import KNOWN_REGIONS, make_plan
from simulators.local_stack.testing import free_base_port

REGIONS = list(KNOWN_REGIONS)
SAMPLE_S = 0.5  # wall seconds between samples of the pools


@dataclass(frozen=True)
class LiveConfig:
    scenario: Scenario
    speed: float
    policy: str
    start_s: float
    end_s: float
    replicas: int = 3
    faults: tuple[str, ...] = (
        "replica_kill9", "capacity_errors", "sentinel_failover", "region_drain",
    )  # fmt: skip
    patience_mean_s: float = 180.0  # scenario seconds a user waits in the queue, on average
    reconnect_share: float = 0.1
    workdir: Path = Path("simulators/out/live")
    regions: tuple[str, ...] = tuple(REGIONS)
    min_pool: int = 2  # per region, always hot (the stack waits for these at start)
    buffer: int = 5  # per region: 20 over four regions, the model's buffer for one
    static: int | None = None  # per region; None: the static peak pool split over the regions
    via_router: bool = True  # players connect through the routers' signalling, else in-process


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def draw_users(cfg: LiveConfig) -> tuple[list[User], int]:
    """The scenario's arrivals in [start, end), each with a home region, a patience
    and whether it reconnects once (drawn from the seed, after the model's draws)."""
    arrivals = draw_arrivals(cfg.scenario)
    static_count = peak_parallel(arrivals, extra_s=cfg.scenario.recycle_s)
    rng = np.random.default_rng([cfg.scenario.seed, 7])
    users = []
    for n, (t, d) in enumerate(zip(arrivals.times, arrivals.durations, strict=True)):
        home = cfg.regions[int(rng.integers(len(cfg.regions)))]
        patience = float(rng.exponential(cfg.patience_mean_s))
        again = bool(rng.random() < cfg.reconnect_share)
        if cfg.start_s <= t < cfg.end_s:
            users.append(User(n, home, float(t), float(d), max(patience, 5.0), again))
    return users, static_count


@dataclass
class Tracker:
    samples: list[Sample] = field(default_factory=list)
    faults: list[tuple[float, float, str]] = field(default_factory=list)  # (from, to, name)
    notes: dict[str, Any] = field(default_factory=dict)  # what each fault did
    fault_errors: list[str] = field(default_factory=list)


async def sample_loop(
    stack: LaunchStack, users: Users, all_users: list[User], tr: Tracker, stop: asyncio.Event
) -> None:
    url = stack.plan.control_plane_url + "/v1/pools"
    headers = {"Authorization": f"Bearer {stack.plan.admin_token}"}
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        counts: dict[str, dict[str, int]] = {}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError, ValueError):
            async with users.http.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                if resp.status == 200:
                    body = await resp.json()
                    counts = {r: dict(v["instances"]) for r, v in body.get("regions", {}).items()}
        now, t = loop.time(), users.scenario_now()
        for region in stack.plan.regions:
            name = region.name
            serving = sum(
                1 for u in all_users
                if u.instance and u.region == name and u.ended_wall is None
            )  # fmt: skip
            queued = sum(
                1 for u in all_users
                if u.home == name and u.sid and u.assigned_wall is None and u.ended_wall is None
                and not u.refused and not u.lost
            )  # fmt: skip
            tr.samples.append(Sample(
                t=t, region=name, sessions=serving,
                pool=stack.sim_fleet.count(name),
                ready=counts.get(name, {}).get("ready", 0), queue=queued,
            ))  # fmt: skip
        await asyncio.sleep(max(0.0, SAMPLE_S - (loop.time() - now)))


async def fault_loop(stack: LaunchStack, users: Users, plan: list[Scheduled], tr: Tracker) -> None:
    target = Target(region=stack.plan.regions[0].name, private_ip="")
    loop = asyncio.get_running_loop()
    for item in sorted(plan, key=lambda s: s.at_s):
        due = users.t0 + (item.at_s - users.start_s) / users.speed
        await asyncio.sleep(max(0.0, due - loop.time()))
        began = users.scenario_now()
        say(f"fault {item.fault.name} at scenario {began / 3600:.2f} h")
        try:
            await item.fault.inject(stack, target)
            await asyncio.sleep(item.hold_s / users.speed)
            await item.fault.heal(stack, target)
        except Exception as exc:  # reported; the replay goes on
            tr.fault_errors.append(f"{item.fault.name}: {type(exc).__name__}: {exc}")
        tr.faults.append((began, users.scenario_now(), item.fault.name))
        tr.notes[item.fault.name] = item.fault.notes


async def pools_settled(
    stack: LaunchStack, http: aiohttp.ClientSession, bound_s: float
) -> dict[str, int]:
    """Wait (bounded) until no instance is reserved, streaming or recycling; the counts left."""
    url = stack.plan.control_plane_url + "/v1/pools"
    headers = {"Authorization": f"Bearer {stack.plan.admin_token}"}
    deadline = time.monotonic() + bound_s
    left: dict[str, int] = {"unknown": -1}
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError, ValueError):
            async with http.get(url, headers=headers) as resp:
                body = await resp.json()
            left = {
                f"{r}:{state}": n
                for r, pool in body.get("regions", {}).items()
                for state, n in pool["instances"].items()
                if state in ("reserved", "streaming", "recycling") and n
            }
            if not left:
                return {}
        await asyncio.sleep(0.5)
    return left


async def run_live(cfg: LiveConfig) -> dict[str, Any]:
    began = time.monotonic()
    users_list, static_count = draw_users(cfg)
    sentinel = "sentinel_failover" in cfg.faults
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    plan = make_plan(
        workdir=cfg.workdir / "stack", regions=list(cfg.regions),
        pool_sizes={"*": cfg.min_pool}, base_port=free_base_port(), redis_url=None,
        demo_visit_from=False, redis_mode="sentinel" if sentinel else "single",
    )  # fmt: skip
    per_region = cfg.static if cfg.static is not None else -(-static_count // len(cfg.regions))
    pool = PoolConfig(
        policy=cfg.policy, static_count=dict.fromkeys(cfg.regions, per_region),
        buffer_size=cfg.buffer, max_size=GROUP_MAX,
    )  # fmt: skip
    stack = LaunchStack(plan, say, replicas=cfg.replicas, scenario=cfg.scenario,
                        speed=cfg.speed, pool=pool, via_router=cfg.via_router)  # fmt: skip
    tracker = Tracker()
    stop = asyncio.Event()
    supervisor: asyncio.Task[None] | None = None
    settled: dict[str, int] = {}
    try:
        await stack.start(240)
        for r in cfg.regions:
            await asyncio.to_thread(set_group_max, stack, r, GROUP_MAX)
        stack.day_begins()
        supervisor = asyncio.create_task(stack.supervise(stop))
        say(f"stack ready; replaying {len(users_list)} users at speed {cfg.speed:g} "
            f"({(cfg.end_s - cfg.start_s) / cfg.speed:.0f} s), policy {cfg.policy}")  # fmt: skip
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector) as http:
            users = Users(http, plan.control_plane_url, stack.sim_fleet, plan.token_key,
                          speed=cfg.speed, start_s=cfg.start_s, end_s=cfg.end_s,
                          claim_ttl_s=stack.timings.claim_ttl_s, via_router=cfg.via_router)  # fmt: skip
            users.t0 = asyncio.get_running_loop().time() + 0.5
            sampler = asyncio.create_task(sample_loop(stack, users, users_list, tracker, stop))
            faults = asyncio.create_task(
                fault_loop(stack, users, fault_plan(cfg, sentinel), tracker)
            )  # fmt: skip
            await asyncio.gather(*(users.run(u) for u in users_list))
            replay_end = asyncio.get_running_loop().time()
            await faults
            settled = await pools_settled(stack, http, 30.0)
            stop.set()
            await sampler
            wall = time.monotonic() - began
            paid_s = {
                r: stack.sim_fleet.paid_s(r, users.t0, replay_end) * cfg.speed for r in cfg.regions
            }
            result = figures(
                cfg, users_list, users.rec, tracker, paid_s, static_count, settled, wall
            )
            png = cfg.workdir / f"launch_day_live_{cfg.policy}.png"
            plot(tracker.samples, tracker.faults, png, cfg.policy)
            result["png"] = str(png)
            return result
    finally:
        stop.set()
        if supervisor is not None:
            await supervisor
        await stack.sim_fleet.aclose()
        await asyncio.to_thread(stack.stop)


def fault_plan(cfg: LiveConfig, sentinel: bool) -> list[Scheduled]:
    """The scenario's faults; a replay of a slice of the day that misses their
    times gets them spread evenly over its own middle instead (hold shortened)."""
    planned = peak_faults(list(cfg.regions), sentinel, list(cfg.faults))
    if all(cfg.start_s <= f.at_s < cfg.end_s for f in planned):
        return planned
    span, n = cfg.end_s - cfg.start_s, len(planned)
    return [
        replace(
            f, at_s=cfg.start_s + span * (k + 1) / (n + 2), hold_s=min(f.hold_s, span / (2 * n + 4))
        )
        for k, f in enumerate(planned)
    ]


def live_config(args: Any, scenario: Scenario) -> LiveConfig:
    random.seed(scenario.seed)
    day = scenario.day_s
    start = args.from_hour * 3600.0
    end = min(day, args.to_hour * 3600.0) if args.to_hour is not None else day
    speed = args.speed or (end - start) / 600.0  # default: the replay takes ~10 minutes
    faults = tuple(f for f in (args.faults or "").split(",") if f) if args.faults is not None else (
        "replica_kill9", "capacity_errors", "sentinel_failover", "region_drain")  # fmt: skip
    return replace(
        LiveConfig(scenario=scenario, speed=speed, policy=args.policy, start_s=start, end_s=end),
        replicas=args.replicas,
        faults=faults,
        # Absolute: nginx reads a relative path against its own prefix (the stack's
        # balancer and routers live under this folder), so a relative --out doubled.
        workdir=(args.out / "live").resolve(),
        buffer=args.buffer,
        static=args.static,
        via_router=args.connect == "router",
    )
