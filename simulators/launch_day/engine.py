"""Discrete-event core: one region, one policy, one day, many times faster than real time.

Users arrive and take a hot instance or queue; the pool manager ticks every
``tick_s``, asks the real policy for a target, damps it with the real damping
function, launches (warm pool first, cold otherwise, sometimes refused with
InsufficientInstanceCapacity) or terminates idle instances. GPU time is paid from
the launch request to termination; stopped warm-pool instances cost no GPU time.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from regional_stack.pool.damping import DampingConfig, DampingState, damp
from regional_stack.pool.leadtime import LeadTimeTracker
from regional_stack.pool.policies import DemandSnapshot, Policy
from simulators.launch_day.scenario import Arrivals, Scenario

# Event kinds, ordered so that at equal times capacity appears before it is asked for.
READY, RECYCLED, WARM_REFILL, END, ARRIVAL, ABANDON, TICK = range(7)


@dataclass
class Series:
    t: list[float] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    pool: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)


@dataclass
class Result:
    policy: str
    gpu_seconds: float
    busy_seconds: float
    arrived: int
    served: int
    abandoned: int
    waits: npt.NDArray[np.float64]  # one per arrival; abandoned users count their full wait
    launches_warm: int
    launches_cold: int
    capacity_errors: int
    peak_sessions: int
    series: Series


@dataclass
class _Region:
    """Mutable simulation state; kept in one place so the event handlers stay short."""

    ready: list[int] = field(default_factory=list)
    started: dict[int, float] = field(default_factory=dict)  # instance -> launch request time
    busy: int = 0  # serving or recycling
    serving: int = 0
    provisioning: int = 0
    warm_stock: int = 0
    warm_preparing: int = 0
    waiting: dict[int, float] = field(default_factory=dict)  # user -> arrival (FIFO order)
    next_id: int = 0


def simulate(
    policy: Policy,
    scenario: Scenario,
    arrivals: Arrivals,
    damping: DampingConfig,
    progress: Callable[[float], None] | None = None,
) -> Result:
    rng = np.random.default_rng([scenario.seed, 1])
    sc = scenario
    st = _Region()
    lead = LeadTimeTracker(configured_s=sc.warm_lead_s if sc.warm_pool else sc.cold_lead_s)
    events: list[tuple[float, int, int, int]] = []
    seq = 0

    def push(t: float, kind: int, payload: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, kind, seq, payload))

    n = len(arrivals.times)
    waits = np.zeros(n)
    gpu_seconds = busy_seconds = 0.0
    served = abandoned = warm_launches = cold_launches = capacity_errors = peak = 0
    per_minute: deque[int] = deque([0], maxlen=15)
    minute = 0
    damping_state = DampingState()
    series = Series()

    def group_size() -> int:
        return len(st.ready) + st.busy + st.provisioning

    def assign(user: int, now: float) -> None:
        nonlocal busy_seconds, served, peak
        instance = st.ready.pop()
        waits[user] = now - arrivals.times[user]
        duration = float(arrivals.durations[user])
        end = min(now + duration, sc.day_s)
        busy_seconds += end - now
        served += 1
        st.busy += 1
        st.serving += 1
        peak = max(peak, st.serving)
        push(now + duration, END, instance)

    def warm_target() -> int:
        return max(0, sc.warm_max_prepared - group_size()) if sc.warm_pool else 0

    def refill_warm(now: float) -> None:
        missing = warm_target() - st.warm_stock - st.warm_preparing
        for _ in range(max(0, missing)):
            st.warm_preparing += 1
            push(now + sc.cold_lead_s, WARM_REFILL, 0)

    def launch(count: int, now: float) -> None:
        nonlocal warm_launches, cold_launches
        for _ in range(count):
            if st.warm_stock > 0:
                st.warm_stock -= 1
                base = sc.warm_lead_s
                warm_launches += 1
            else:
                base = sc.cold_lead_s
                cold_launches += 1
            took = base * (1.0 + rng.uniform(-sc.lead_jitter, sc.lead_jitter))
            iid = st.next_id
            st.next_id += 1
            st.started[iid] = now
            st.provisioning += 1
            push(now + took, READY, iid)

    def terminate_idle(count: int, now: float) -> None:
        nonlocal gpu_seconds
        for _ in range(min(count, len(st.ready))):
            iid = st.ready.pop(0)  # the longest-idle one
            gpu_seconds += now - st.started.pop(iid)
            if sc.warm_pool and st.warm_stock + st.warm_preparing < warm_target():
                # Reuse on scale-in: the instance is stopped back into the warm pool.
                st.warm_preparing += 1
                push(now + 60.0, WARM_REFILL, 0)

    def snapshot(now: float) -> DemandSnapshot:
        return DemandSnapshot(
            now=now,
            in_use=st.busy,
            ready=len(st.ready),
            provisioning=st.provisioning,
            queue=len(st.waiting),
            arrivals_per_min=tuple(per_minute),
            lead_time_s=lead.estimate(),
        )

    # The day starts with the policy's own idea of the pool, already hot.
    first = policy(snapshot(0.0)).target
    for _ in range(first):
        st.started[st.next_id] = 0.0
        st.ready.append(st.next_id)
        st.next_id += 1
    st.warm_stock = warm_target()
    for user in range(n):
        push(float(arrivals.times[user]), ARRIVAL, user)
    push(0.0, TICK, 0)
    next_progress = 0.0

    while events:
        now, kind, _, payload = heapq.heappop(events)
        if now >= sc.day_s:
            break
        while now >= (minute + 1) * 60.0:
            minute += 1
            per_minute.append(0)
        if kind == ARRIVAL:
            per_minute[-1] += 1
            if st.ready and not st.waiting:
                assign(payload, now)
            else:
                st.waiting[payload] = now
                push(now + sc.queue_timeout_s, ABANDON, payload)
        elif kind in (READY, RECYCLED):
            if kind == READY:
                st.provisioning -= 1
                lead.record(now - st.started[payload])
            else:
                st.busy -= 1
            st.ready.append(payload)
            if st.waiting:
                user = next(iter(st.waiting))
                del st.waiting[user]
                assign(user, now)
        elif kind == END:
            st.serving -= 1
            push(now + sc.recycle_s, RECYCLED, payload)
        elif kind == ABANDON:
            if st.waiting.pop(payload, None) is not None:
                waits[payload] = sc.queue_timeout_s
                abandoned += 1
        elif kind == WARM_REFILL:
            st.warm_preparing -= 1
            st.warm_stock += 1
        elif kind == TICK:
            decision = damp(group_size(), policy(snapshot(now)).target, now, damping_state, damping)
            damping_state = decision.state
            wanted = min(decision.desired, sc.max_group_size) - group_size()
            if wanted > 0:
                if rng.random() < sc.capacity_error_rate:
                    capacity_errors += 1  # retried (with fallbacks) on the next tick
                else:
                    launch(wanted, now)
            elif wanted < 0:
                terminate_idle(-wanted, now)
            refill_warm(now)
            series.t.append(now)
            series.sessions.append(st.serving)
            series.pool.append(group_size())
            series.ready.append(len(st.ready))
            series.queue.append(len(st.waiting))
            push(now + sc.tick_s, TICK, 0)
            if progress is not None and now >= next_progress:
                progress(now / sc.day_s)
                next_progress += 3600.0

    for started in st.started.values():
        gpu_seconds += sc.day_s - started
    for user in st.waiting:
        waits[user] = sc.day_s - arrivals.times[user]
    return Result(
        policy=policy.name,
        gpu_seconds=gpu_seconds,
        busy_seconds=busy_seconds,
        arrived=n,
        served=served,
        abandoned=abandoned,
        waits=waits,
        launches_warm=warm_launches,
        launches_cold=cold_launches,
        capacity_errors=capacity_errors,
        peak_sessions=peak,
        series=series,
    )
