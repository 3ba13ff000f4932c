"""Random interleavings on a real Redis, invariants 1-5 checked after every step.

Crashes are injected at the connection seam: an operation's process "dies"
after its k-th Redis call (tests/integration/broker/crash.py), for creates,
ends and connects; region-side steps whose follow-up is never run (dispatch,
reap) are the outbox's crash points. The `settle` rule then lets
claim TTL + a reaper period pass with live agents, after which nothing may
have leaked (invariant 2).

Redis may also lose everything (`redis_loses_everything`): the live agents
register again with what they remember (the highest epoch they were assigned,
the session they serve), and every session they served is live again on the
same instance at the same epoch, with epochs never going backwards (invariants
4 and 6).

Redis may also lose only its last writes (`redis_loses_last_writes`): a
failover to a replica that had synced at an earlier step (`replica_syncs`
took a DUMP of every key then). The live agents report what they serve on
their next heartbeat (or register again), and every user who held a live
session reads it with their secret: none gets "unknown session" (a waiting one
is rebuilt from its s2 secret, docs/operations.md "Redis loses data") unless
their client holds another live session or the secret is too old, rebuilt
waiters keep their creation order, and invariants 1-3 (and 2 after `settle`)
hold as always.

Every step is also checked against the lifecycle table: each instance's state
after a step must be reachable from its state before the step by allowed
moves (a script makes at most four, e.g. a registration that takes back a
streaming session: new -> booting -> ready -> reserved -> streaming), and no
script may be refused a move (TransitionRefused is never expected, except for
re-registering a terminated instance, whose id is final).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from control_plane import keys
from control_plane.broker import Broker
from control_plane.broker.restore import rebuild_window_ms
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import ManualClock
from control_plane.domain import (
    InvalidArgument,
    Session,
    SessionExpired,
    SessionNotLive,
    StaleEpoch,
    TransitionRefused,
    UnknownInstance,
    UnknownSession,
)
from control_plane.session_secrets import SessionSecrets
from streamfleet.lifecycle import (
    LIVE_SESSION_STATES,
    SERVING_INSTANCE_STATES,
    EndReason,
    InstanceState,
    SessionState,
    instance_move_allowed,
)

from .crash import Crash, crash_after
from .invariants import all_sessions, check_invariants

REGIONS = ("eu-central-1", "eu-west-1")
INSTANCES = [(r, f"i-{n}-{k}") for n, r in enumerate(REGIONS) for k in range(3)]
CLIENTS = [f"client-{k}" for k in range(6)]
SETTINGS = BrokerSettings(
    claim_ttl_s=30, reconnect_window_s=20, heartbeat_interval_s=5, missed_heartbeats=3,
    queue_timeout_s=120, outbox_grace_s=2,
)  # fmt: skip
SECRETS = SessionSecrets(b"stateful-test-agent-token-key-32b")
# Normal refusals of wrong calls; TransitionRefused is deliberately not here.
EXPECTED = (InvalidArgument, UnknownSession, UnknownInstance, StaleEpoch, SessionNotLive)


def reachable(before: InstanceState | None, after: InstanceState, moves: int = 4) -> bool:
    """Can `after` follow `before` by at most `moves` allowed moves?"""
    if instance_move_allowed(before, after):
        return True
    return moves > 1 and any(
        instance_move_allowed(before, mid) and reachable(mid, after, moves - 1)
        for mid in InstanceState
    )


class BrokerMachine(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis: Any = aioredis.Redis.from_url(self.redis_url)
        self.clock = ManualClock()
        self.broker = Broker(
            self.redis, REGIONS, SETTINGS, self.clock,
            mint_secret=SECRETS.mint, mint_session_secret=SECRETS.mint_session,
        )  # fmt: skip
        self.alive: set[tuple[str, str]] = set()  # agents that heartbeat in `settle`
        self.epochs: dict[tuple[str, str], int] = {}
        self.queues: dict[str, dict[str, float]] = {r: {} for r in REGIONS}
        self.placed: dict[str, str | None] = {}
        self.instance_states: dict[tuple[str, str], InstanceState] = {}
        # What each agent knows, as of the last step: the session it serves.
        self.serving: dict[tuple[str, str], tuple[str, int, bool]] = {}
        # What each user holds: session id -> (client, secret) (a crashed create
        # never answered, so its user holds nothing).
        self.secrets: dict[str, tuple[str, str]] = {}
        # The replica's copy (key -> (DUMP, PTTL)), taken by `replica_syncs`.
        self.replica: dict[bytes, tuple[bytes, int]] | None = None
        # Instances whose counter went back with lost writes and whose agent has
        # not spoken since (it raises the counter when it does: invariant 4).
        self.quiet: set[tuple[str, str]] = set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    @initialize()
    def fresh(self) -> None:
        self.run(self.redis.flushall())

    async def _session_of(self, client: str) -> Session | None:
        for s in await all_sessions(self.broker):
            if s.client_id == client and s.state is not SessionState.ENDED:
                return s
        return None

    # -- agents -----------------------------------------------------------------

    @rule(inst=st.sampled_from(INSTANCES), as_ready=st.booleans())
    def register(self, inst: tuple[str, str], as_ready: bool) -> None:
        region, iid = inst
        ip = f"127.{11 + REGIONS.index(region)}.0.{int(iid[-1]) + 1}"
        # The agent remembers the epochs it was assigned (invariant 4).
        max_epoch = self.epochs.get(inst, 0)
        try:
            self.run(
                self.broker.register_instance(region, iid, ip, ready=as_ready, max_epoch=max_epoch)
            )
        except TransitionRefused as refused:
            assert refused.current == InstanceState.TERMINATED, refused
            return
        self.alive.add(inst)
        self.quiet.discard(inst)

    async def _beat(self, region: str, iid: str) -> None:
        states = await self.broker.instance_states(region)
        state = states.get(iid)
        if state is None or state is InstanceState.TERMINATED:
            return
        serving = (await self.broker.instance_sessions(region)).get(iid)
        # A well-behaved agent: resets and reports ready; else echoes its session.
        reported = (
            InstanceState.READY
            if state in (InstanceState.RECYCLING, InstanceState.BOOTING, InstanceState.LOST)
            else state
        )
        sid, epoch = serving if serving else (None, None)
        max_epoch = self.epochs.get((region, iid), 0)  # what the agent was assigned
        await self.broker.heartbeat(region, iid, reported, sid, epoch, max_epoch)
        self.quiet.discard((region, iid))

    @rule(inst=st.sampled_from(INSTANCES))
    def heartbeat(self, inst: tuple[str, str]) -> None:
        with contextlib.suppress(*EXPECTED):
            self.run(self._beat(*inst))

    @rule(inst=st.sampled_from(INSTANCES))
    def agent_dies(self, inst: tuple[str, str]) -> None:
        self.alive.discard(inst)

    @rule(inst=st.sampled_from(INSTANCES), force=st.booleans())
    def drain(self, inst: tuple[str, str], force: bool) -> None:
        with contextlib.suppress(*EXPECTED):
            self.run(self.broker.drain(*inst, force=force))

    @rule(inst=st.sampled_from(INSTANCES))
    def terminate(self, inst: tuple[str, str]) -> None:
        with contextlib.suppress(*EXPECTED):
            self.run(self.broker.terminate(*inst))
        self.alive.discard(inst)

    # -- clients ----------------------------------------------------------------

    @rule(client=st.sampled_from(CLIENTS), order=st.permutations(REGIONS), one=st.booleans())
    def create(self, client: str, order: list[str], one: bool) -> None:
        regions = order[:1] if one else order
        self._holds(self.run(self.broker.create_session(client, regions)).session)

    def _holds(self, s: Session) -> None:
        self.secrets[s.session_id] = (s.client_id, s.secret)

    async def _client_event(self, client: str, connected: bool, epoch_shift: int) -> None:
        s = await self._session_of(client)
        if s is None or s.region is None or s.instance_id is None or s.epoch is None:
            return
        await self.broker.client_event(
            s.region, s.instance_id, s.session_id, s.epoch + epoch_shift, connected=connected
        )

    @rule(client=st.sampled_from(CLIENTS), connected=st.booleans(), stale=st.booleans())
    def client_event(self, client: str, connected: bool, stale: bool) -> None:
        with contextlib.suppress(*EXPECTED):
            self.run(self._client_event(client, connected, -1 if stale else 0))

    @rule(client=st.sampled_from(CLIENTS), reason=st.sampled_from(list(EndReason)))
    def end(self, client: str, reason: EndReason) -> None:
        async def go() -> None:
            s = await self._session_of(client)
            if s is not None:
                await self.broker.end_session(s.session_id, reason, epoch=s.epoch)

        with contextlib.suppress(*EXPECTED):
            self.run(go())

    @rule(region=st.sampled_from(REGIONS))
    def reap(self, region: str) -> None:
        self.run(self.broker.reap(region))

    @rule(seconds=st.sampled_from([1, 4, 12, 25, 61]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(region=st.sampled_from(REGIONS))
    def control_plane_pause(self, region: str) -> None:
        """Nothing runs (no reaper, no heartbeat accepted) for 3x the heartbeat
        timeout; the first pass after it declares no instance lost."""

        async def go() -> None:
            before = await self.broker.instance_states(region)
            self.clock.advance(3 * SETTINGS.lost_after_s)
            await self.broker.reap(region)
            after = await self.broker.instance_states(region)
            newly = [i for i, s in after.items() if s is InstanceState.LOST and before.get(i) != s]
            assert not newly, f"declared lost after a pause: {newly}"

        self.run(go())

    # -- crashes between the two calls of a change ------------------------------

    @rule(
        client=st.sampled_from(CLIENTS), order=st.permutations(REGIONS),
        calls=st.integers(min_value=0, max_value=12),
    )  # fmt: skip
    def crash_in_create(self, client: str, order: list[str], calls: int) -> None:
        """The process dies after `calls` Redis calls of a create (before or after
        the create, the reserve, the bind, the ticket, the enqueue, a queue add)."""
        with crash_after(self.broker, calls), contextlib.suppress(Crash):
            self.run(self.broker.create_session(client, order))

    @rule(client=st.sampled_from(CLIENTS), calls=st.integers(min_value=0, max_value=4))
    def crash_in_end(self, client: str, calls: int) -> None:
        async def go() -> None:
            s = await self._session_of(client)
            if s is not None:
                with crash_after(self.broker, calls):
                    await self.broker.end_session(s.session_id, EndReason.CLIENT_ENDED)

        with contextlib.suppress(Crash, *EXPECTED):
            self.run(go())

    @rule(client=st.sampled_from(CLIENTS), calls=st.integers(min_value=0, max_value=3))
    def crash_in_connect(self, client: str, calls: int) -> None:
        async def go() -> None:
            s = await self._session_of(client)
            if s is None or s.region is None or s.instance_id is None or s.epoch is None:
                return
            with crash_after(self.broker, calls):
                await self.broker.client_event(
                    s.region, s.instance_id, s.session_id, s.epoch, connected=True
                )

        with contextlib.suppress(Crash, *EXPECTED):
            self.run(go())

    @rule(region=st.sampled_from(REGIONS))
    def crash_in_dispatch(self, region: str) -> None:
        self.run(self.broker.store.dispatch(region, 10))

    @rule(region=st.sampled_from(REGIONS))
    def crash_in_reap(self, region: str) -> None:
        self.run(self.broker.store.reap(region))

    # -- Redis loses data ---------------------------------------------------------

    @rule()
    def redis_loses_everything(self) -> None:
        """A restart without persistence: the live agents' next heartbeat is
        answered 404, so each registers again with what it remembers."""

        async def go() -> None:
            served = {inst: self.serving[inst] for inst in self.alive if inst in self.serving}
            await self.redis.flushall()
            self.instance_states.clear()
            self.queues = {r: {} for r in REGIONS}
            self.placed = {}
            for region, iid in sorted(self.alive):
                ip = f"127.{11 + REGIONS.index(region)}.0.{int(iid[-1]) + 1}"
                await self.broker.register_instance(
                    region, iid, ip, max_epoch=self.epochs.get((region, iid), 0),
                    served=served.get((region, iid)),
                )  # fmt: skip
                await self._check_moves()
            # 6. Every session a live agent served is live again, on an instance
            # that served it (two may claim one: a crashed call's orphan
            # reservation and the real one; the one its player reached wins).
            reporters: dict[str, list[tuple[str, str, int, bool]]] = {}
            for (region, iid), (sid, epoch, connected) in served.items():
                reporters.setdefault(sid, []).append((region, iid, epoch, connected))
            live = {x.session_id for x in await all_sessions(self.broker)
                    if x.state in LIVE_SESSION_STATES}  # fmt: skip
            for sid, claims in reporters.items():
                if sid not in live:
                    # One live session per client: a session is not rebuilt over
                    # its client's other one that an agent also reported (a
                    # create that crashed after reserving, for a client already
                    # streaming, left an orphan reservation its agent learnt).
                    client = sid.split("-", 1)[0]
                    assert any(o.split("-", 1)[0] == client for o in live & set(reporters)), sid
                    continue
                s = await self.broker.get_session(sid)
                assert s.state in (SessionState.ASSIGNED, SessionState.CONNECTED), s
                where = (s.region, s.instance_id, s.epoch)
                candidates = [c for c in claims if c[3]] or claims
                assert where in [c[:3] for c in candidates], (s, claims)
                region, iid, _, connected = next(c for c in candidates if c[:3] == where)
                assert s.state is (SessionState.CONNECTED if connected else SessionState.ASSIGNED)
                state = (await self.broker.instance_states(region))[iid]
                assert state is (
                    InstanceState.STREAMING if connected else InstanceState.RESERVED
                ), state

        self.run(go())

    @rule()
    def replica_syncs(self) -> None:
        """The replica has everything written so far (a failover later loses
        whatever was written after this step)."""

        self.replica = self.run(self._copy())

    async def _copy(self) -> dict[bytes, tuple[bytes, int]]:
        copy = {}
        async for key in self.redis.scan_iter(count=1000):
            value = await self.redis.dump(key)
            if value is not None:
                copy[key] = (value, max(0, await self.redis.pttl(key)))
        return copy

    @precondition(lambda self: self.replica is not None)
    @rule()
    def redis_loses_last_writes(self) -> None:
        """A failover to the replica: every write since `replica_syncs` is lost.
        The live agents' next heartbeat says what they serve (or, unknown, they
        register again); then every user who held a live session reads it."""
        assert self.replica is not None
        replica = self.replica

        async def go() -> None:
            believed = {s.session_id for s in await all_sessions(self.broker)
                        if s.state in LIVE_SESSION_STATES}  # fmt: skip
            served = {inst: self.serving[inst] for inst in self.alive if inst in self.serving}
            await self.redis.flushall()
            for key, (value, ttl) in replica.items():
                await self.redis.restore(key, ttl, value)
            self.instance_states.clear()
            self.queues = {r: {} for r in REGIONS}
            self.placed = {}
            self.quiet = {(r, i) for r, i in INSTANCES if (r, i) not in self.alive}
            for region, iid in sorted(self.alive):
                await self._agent_reports(region, iid, served.get((region, iid)))
                await self._check_moves()
            await self._users_read(believed)

        self.run(go())

    async def _agent_reports(
        self, region: str, iid: str, served: tuple[str, int, bool] | None
    ) -> None:
        """A live agent after lost writes: a heartbeat with what it really serves
        and the highest epoch it was assigned; unknown, it registers again."""
        max_epoch = self.epochs.get((region, iid), 0)
        sid, epoch, connected = served if served else (None, None, False)
        reported = (
            InstanceState.STREAMING if connected
            else InstanceState.RESERVED if served else InstanceState.READY
        )  # fmt: skip
        try:
            await self.broker.heartbeat(region, iid, reported, sid, epoch, max_epoch)
        except UnknownInstance:
            ip = f"127.{11 + REGIONS.index(region)}.0.{int(iid[-1]) + 1}"
            await self.broker.register_instance(region, iid, ip, max_epoch=max_epoch, served=served)
        except TransitionRefused as refused:  # a terminated id is final
            assert refused.current == InstanceState.TERMINATED, refused
        self.quiet.discard((region, iid))

    async def _users_read(self, believed: set[str]) -> None:
        """Every user whose session was live reads it with their secret: never
        "unknown session" unless too old or their client started another."""
        window = rebuild_window_ms(SETTINGS)
        readers = []
        for sid in sorted(believed & set(self.secrets)):
            try:
                await self.broker.get_session(sid)
            except UnknownSession:
                readers.append(sid)
        # Each read first finds it missing (ask again in one heartbeat period,
        # in which any agent that streams it has reported it); then rebuilds.
        for attempt in range(2):
            now = int(self.clock.now_arg())
            for sid in readers:
                client, secret = self.secrets[sid]
                facts = SECRETS.facts(sid, secret)
                assert facts is not None and facts.client_id == client
                try:
                    got = await self.broker.rebuild_session(facts, secret)
                except SessionExpired:
                    assert now - facts.created_ms >= window
                    continue
                if got.wait_ms:
                    assert attempt == 0, (sid, got)
                    continue
                if got.session is None:
                    other = await self._session_of(client)
                    assert other is not None and other.session_id != sid, sid
                    continue
                assert got.session.state in LIVE_SESSION_STATES, got
            if attempt == 0:
                self.clock.advance(SETTINGS.heartbeat_interval_s)
        # Rebuilt waiters keep their creation order in every queue. (A session
        # re-placed after the loss, because its agent serves a newer one, also
        # waits ahead of the counter tickets, but from when it lost its instance.)
        sessions = {s.session_id: s for s in await all_sessions(self.broker)}
        for region in REGIONS:
            line = [k.decode() for k in await self.redis.zrange(
                keys.region_key(region, "queue"), 0, -1)]  # fmt: skip
            rebuilt = [sid for sid in line if (sessions.get(sid) and
                       (sessions[sid].ticket or 0) < 0 and
                       sessions[sid].requeued_ms is None)]  # fmt: skip
            created = [SECRETS.facts(sid, self.secrets[sid][1]) for sid in rebuilt]
            times = [f.created_ms for f in created if f is not None]
            assert times == sorted(times), (region, rebuilt)

    # -- repair -----------------------------------------------------------------

    @rule()
    def settle(self) -> None:
        """Claim TTL + a reaper period pass with the live agents beating."""

        async def go() -> None:
            for _ in range(8):  # 8 x 5 s > claim TTL (30 s) + outbox grace
                self.clock.advance(5)
                for region, iid in sorted(self.alive):
                    with contextlib.suppress(*EXPECTED):
                        await self._beat(region, iid)
                    await self._check_moves()
                for region in REGIONS:
                    await self.broker.reap(region)
                    await self._check_moves()
            await check_invariants(self.broker, settled=True)

        self.run(go())

    # -- invariants -------------------------------------------------------------

    async def _check_moves(self) -> None:
        """The lifecycle table: every change since the last check was allowed."""
        for region in REGIONS:
            for iid, state in (await self.broker.instance_states(region)).items():
                before = self.instance_states.get((region, iid))
                assert reachable(before, state), f"{iid}: {before} -> {state}"
                self.instance_states[(region, iid)] = state

    @invariant()
    def invariants_hold(self) -> None:
        async def go() -> None:
            await check_invariants(self.broker)
            await self._check_moves()
            # 4. Fencing epochs only ever grow, whatever Redis forgot (an agent
            # that never spoke again since the loss has no counter yet).
            for region in REGIONS:
                raw = await self.redis.hgetall(keys.region_key(region, "epoch"))
                for k, v in raw.items():
                    key = (region, k.decode())
                    if key in self.quiet:  # its agent raises it when it speaks
                        self.epochs[key] = max(self.epochs.get(key, 0), int(v))
                        continue
                    assert int(v) >= self.epochs.get(key, 0), key
                    self.epochs[key] = int(v)
                states = await self.broker.instance_states(region)
                serving = await self.broker.instance_sessions(region)
                for iid, state in states.items():
                    if state in SERVING_INSTANCE_STATES and iid in serving:
                        sid, epoch = serving[iid]
                        streaming = state is InstanceState.STREAMING
                        self.serving[(region, iid)] = (sid, epoch, streaming)
                    else:
                        self.serving.pop((region, iid), None)
            # 5. Served in arrival order within the regions accepted: a session
            # newly placed in a region leaves no older waiter of that region behind
            # (an arrival that never queued is younger than every waiter).
            sessions = {s.session_id: s for s in await all_sessions(self.broker)}
            placed_now = {
                sid: s.region
                for sid, s in sessions.items()
                if s.state in (SessionState.ASSIGNED, SessionState.CONNECTED)
            }
            for region in REGIONS:
                now_q = {
                    k.decode(): score
                    for k, score in await self.redis.zrange(
                        keys.region_key(region, "queue"), 0, -1, withscores=True
                    )
                }
                before = self.queues[region]
                still_waiting = {
                    q: t
                    for q, t in before.items()
                    if q in now_q and sessions.get(q) is not None
                    and sessions[q].state is SessionState.QUEUED
                }  # fmt: skip
                for sid, placed_in in placed_now.items():
                    if placed_in != region or self.placed.get(sid) == region:
                        continue
                    limit = before.get(sid, float("inf"))
                    older = [q for q, t in still_waiting.items() if t < limit]
                    assert not older, f"{sid} placed in {region} ahead of {older}"
                self.queues[region] = now_q
            self.placed = placed_now

        self.run(go())


class BusyBrokerMachine(BrokerMachine):
    """The same rules from a busy fleet (every instance registered, sessions
    placed, some connected), so that Redis losing everything finds live
    sessions to rebuild, which it rarely does from an empty store."""

    @initialize(
        sessions=st.integers(1, len(INSTANCES)),
        connected=st.lists(st.booleans(), min_size=len(CLIENTS), max_size=len(CLIENTS)),
    )
    def fresh(self, sessions: int, connected: list[bool]) -> None:
        async def go() -> None:
            await self.redis.flushall()
            for region, iid in INSTANCES:
                ip = f"127.{11 + REGIONS.index(region)}.0.{int(iid[-1]) + 1}"
                await self.broker.register_instance(region, iid, ip, ready=True)
                self.alive.add((region, iid))
            for client, connect in zip(CLIENTS[:sessions], connected, strict=False):
                placed = await self.broker.create_session(client, list(REGIONS))
                s = placed.session
                self._holds(s)
                if connect and s.region and s.instance_id and s.epoch is not None:
                    await self.broker.client_event(
                        s.region, s.instance_id, s.session_id, s.epoch, connected=True
                    )

        self.run(go())


class LossyBrokerMachine(BrokerMachine):
    """The same rules from a fleet short of instances (some users wait) whose
    replica synced partway through the arrivals, so that losing the last writes
    finds waiting and freshly assigned users the agents never heard of, which
    the other machines rarely reach."""

    @initialize(
        instances=st.integers(0, 3),
        sync_after=st.integers(0, len(CLIENTS)),
        connected=st.lists(st.booleans(), min_size=len(CLIENTS), max_size=len(CLIENTS)),
    )
    def fresh(self, instances: int, sync_after: int, connected: list[bool]) -> None:
        async def go() -> None:
            await self.redis.flushall()
            for region, iid in INSTANCES[:instances]:
                ip = f"127.{11 + REGIONS.index(region)}.0.{int(iid[-1]) + 1}"
                await self.broker.register_instance(region, iid, ip, ready=True)
                self.alive.add((region, iid))
            for n, (client, connect) in enumerate(zip(CLIENTS, connected, strict=True)):
                if n == sync_after:
                    self.replica = await self._copy()
                self.clock.advance(1)  # one arrival a second: creation order is known
                s = (await self.broker.create_session(client, list(REGIONS))).session
                self._holds(s)
                if connect and s.region and s.instance_id and s.epoch is not None:
                    await self.broker.client_event(
                        s.region, s.instance_id, s.session_id, s.epoch, connected=True
                    )

        self.run(go())

    @rule()
    def redis_loses_last_writes_soon(self) -> None:
        """Weighs the loss up in this machine (hypothesis picks rules evenly)."""
        if self.replica is not None:
            self.redis_loses_last_writes()


def _run(machine: type[BrokerMachine], redis_url: str, examples: int) -> None:
    machine.redis_url = redis_url
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            print_blob=True,
        ),
    )


def test_busy_broker_state_machine(redis_server: Any) -> None:
    # STREAMFLEET_STATEFUL_EXAMPLES: fewer for a quick local check.
    examples = int(os.environ.get("STREAMFLEET_STATEFUL_EXAMPLES", "300"))
    _run(BusyBrokerMachine, redis_server.url, max(10, examples // 3))


def test_lossy_broker_state_machine(redis_server: Any) -> None:
    examples = int(os.environ.get("STREAMFLEET_STATEFUL_EXAMPLES", "300"))
    _run(LossyBrokerMachine, redis_server.url, max(10, examples // 3))


def test_broker_state_machine(redis_server: Any) -> None:
    BrokerMachine.redis_url = redis_server.url
    run_state_machine_as_test(
        BrokerMachine,
        settings=settings(
            # STREAMFLEET_STATEFUL_EXAMPLES: fewer for a quick local check.
            max_examples=int(os.environ.get("STREAMFLEET_STATEFUL_EXAMPLES", "300")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            print_blob=True,
        ),
    )
