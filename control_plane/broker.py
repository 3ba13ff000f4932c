"""The broker: atomic one-user-one-GPU assignment on Redis.

Every state change is one Lua script call (control_plane/lua). A change
that spans a region and a session (two hash slots) is two calls, ordered so
that a crash between them leaves a recorded follow-up (the region's outbox)
or a state the reaper repairs within claim TTL + one reaper period.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from control_plane import keys
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import Clock, RedisClock
from control_plane.domain import (
    EndResult,
    HeartbeatReply,
    InvalidArgument,
    Placement,
    ReapReport,
    RegionSnapshot,
    Session,
    SessionNotLive,
    StaleEpoch,
    UnknownInstance,
    UnknownRegion,
    UnknownSession,
    check_client_id,
    check_instance_id,
)
from control_plane.queue_estimate import estimate_wait_s
from control_plane.scripts import Scripts
from control_plane.served_log import ServedLog
from streamfleet.lifecycle import (
    LIVE_SESSION_STATES,
    EndReason,
    InstanceState,
    SessionState,
)
from streamfleet.tokens import is_canonical_ipv4


class BrokerObserver(Protocol):
    """Told about outcomes as they happen (metrics); must not block."""

    def session_ended(self, reason: EndReason) -> None: ...

    def queue_served(self, wait_s: float) -> None: ...


class _NoObserver:
    def session_ended(self, reason: EndReason) -> None:
        pass

    def queue_served(self, wait_s: float) -> None:
        pass


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class Broker:
    def __init__(
        self,
        redis: Any,
        regions: Sequence[str],
        settings: BrokerSettings | None = None,
        clock: Clock | None = None,
        observer: BrokerObserver | None = None,
    ) -> None:
        self.redis = redis
        self.observer: BrokerObserver = observer or _NoObserver()
        self.regions = tuple(regions)
        self.settings = settings or BrokerSettings()
        self.clock = clock or RedisClock()
        self._scripts = Scripts(redis)
        self._region_keys = {r: keys.region_keys(r) for r in self.regions}
        # Bounds connections under bursts: callers wait here, not in Redis' accept queue.
        self._inflight = asyncio.Semaphore(self.settings.max_inflight)
        self.served = ServedLog(self._r, self.settings.queue_rate_window_s)

    # -- plumbing -----------------------------------------------------------

    def _rkeys(self, region: str) -> list[str]:
        try:
            return self._region_keys[region]
        except KeyError:
            raise UnknownRegion(f"unknown region {region!r}", field="region") from None

    async def _r(self, command: str, *args: Any, **kwargs: Any) -> Any:
        """A plain Redis command, under the same in-flight bound as scripts."""
        async with self._inflight:
            return await getattr(self.redis, command)(*args, **kwargs)

    async def _region(self, name: str, region: str, *args: str | int) -> Any:
        region_keys = self._rkeys(region)
        async with self._inflight:
            return await self._scripts[name](region_keys, list(args))

    async def _session(self, name: str, session_id: str, *args: str | int) -> Any:
        async with self._inflight:
            return await self._scripts[name](keys.session_keys(session_id), [session_id, *args])

    def _now(self) -> str:
        return self.clock.now_arg()

    @property
    def _claim_ms(self) -> int:
        return _ms(self.settings.claim_ttl_s)

    @property
    def _fresh_ms(self) -> int:
        return _ms(self.settings.lost_after_s)

    # -- instances ----------------------------------------------------------

    async def register_instance(
        self,
        region: str,
        instance_id: str,
        private_ip: str,
        *,
        instance_type: str = "",
        version: str = "",
        ready: bool = False,
    ) -> InstanceState:
        check_instance_id(instance_id)
        if not is_canonical_ipv4(private_ip):
            raise InvalidArgument("private_ip must be a dotted quad", field="private_ip")
        info = json.dumps({"instance_type": instance_type, "version": version})
        state, entry = await self._region(
            "region_register", region, instance_id, private_ip, info, self._now(),
            "1" if ready else "0", self._claim_ms,
        )  # fmt: skip
        await self._settle(region, [entry])
        return InstanceState(_s(state))

    async def mark_ready(self, region: str, instance_id: str) -> HeartbeatReply:
        """The agent reset its renderer: booting/recycling -> ready."""
        return await self.heartbeat(region, instance_id, InstanceState.READY)

    async def heartbeat(
        self,
        region: str,
        instance_id: str,
        reported: InstanceState,
        session_id: str | None = None,
        epoch: int | None = None,
    ) -> HeartbeatReply:
        check_instance_id(instance_id)
        reply = await self._region(
            "region_heartbeat", region, instance_id, self._now(), reported.value,
            session_id or "", "" if epoch is None else str(epoch), self._claim_ms,
        )  # fmt: skip
        if _s(reply[0]) == "unknown":
            raise UnknownInstance(f"instance {instance_id} must register", field="instance_id")
        state, sid, ep, claim, commands, entry = (_s(x) for x in reply)
        await self._settle(region, [entry])
        return HeartbeatReply(
            state=InstanceState(state),
            session_id=sid or None,
            epoch=int(ep),
            claim_deadline_ms=int(float(claim)) if claim else None,
            commands=tuple(c for c in commands.split(",") if c),
        )

    async def client_event(
        self, region: str, instance_id: str, session_id: str, epoch: int, *, connected: bool
    ) -> SessionState:
        """The agent saw the player connect (or reconnect) or drop."""
        ok, _ = await self._region(
            "region_client", region, instance_id, session_id, str(epoch), self._now(),
            "connected" if connected else "disconnected", _ms(self.settings.reconnect_window_s),
        )  # fmt: skip
        if not ok:
            raise StaleEpoch(f"{instance_id} no longer serves {session_id} at epoch {epoch}")
        if connected:
            ok2 = await self._session("session_connected", session_id, str(epoch), self._now())
            if not ok2[0]:
                raise StaleEpoch(f"session {session_id}: {_s(ok2[1])}")
            return SessionState.CONNECTED
        return SessionState.CONNECTED

    async def drain(self, region: str, instance_id: str, *, force: bool = False) -> InstanceState:
        got = await self._region(
            "region_drain", region, instance_id, self._now(), "1" if force else "0"
        )
        if not got[0]:
            raise UnknownInstance(f"unknown instance {instance_id}", field="instance_id")
        await self._settle(region, [got[2]])
        return InstanceState(_s(got[1]))

    async def terminate(self, region: str, instance_id: str) -> None:
        got = await self._region("region_terminate", region, instance_id, self._now())
        if not got[0]:
            raise UnknownInstance(f"unknown instance {instance_id}", field="instance_id")
        await self._settle(region, [got[1]])

    # -- sessions -----------------------------------------------------------

    async def create_session(
        self,
        client_id: str,
        regions: Sequence[str],
        *,
        queue_regions: Sequence[str] | None = None,
        relax_to: Sequence[str] | None = None,
        model: str = "",
        configuration: dict[str, Any] | None = None,
    ) -> Placement:
        """Place a client: first region (in the given order) with a ready
        instance, else queue it in `queue_regions` (default: `regions`).
        `relax_to` is where it may also wait once a policy relaxes; it is kept
        as the session's `regions`."""
        check_client_id(client_id)
        if not regions:
            raise InvalidArgument("at least one region is required", field="regions")
        for region in (*regions, *(queue_regions or ()), *(relax_to or ())):
            self._rkeys(region)
        waits_in = tuple(queue_regions) if queue_regions is not None else tuple(regions)
        config_json = json.dumps(configuration or {}, separators=(",", ":"))
        # A repeat that finds the client's session just as it ends creates a
        # fresh one instead of answering with the ended session (bounded).
        for _ in range(3):
            sid = keys.new_session_id(client_id)
            secret = secrets.token_urlsafe(24)
            created = await self._session(
                "session_create", sid, client_id, secret, ",".join(relax_to or regions),
                self._now(), model, config_json, _ms(self.settings.queue_timeout_s),
            )  # fmt: skip
            if created[0]:
                break
            # Idempotent repeat: report the live session, and make sure a
            # waiting one is still placed (its first call may have crashed).
            existing = await self.get_session(_s(created[1]))
            if existing.state is SessionState.QUEUED:
                return await self._place(
                    existing, regions, existing.queue_regions or waits_in, True
                )
            if existing.state is not SessionState.ENDED:
                return Placement(existing, existing=True)
        else:
            return Placement(existing, existing=True)
        # Built from what we just wrote: the hot path reads nothing back.
        session = Session(
            session_id=sid, client_id=client_id, secret=secret, state=SessionState.QUEUED,
            regions=tuple(relax_to or regions), created_ms=int(created[2]), model=model,
            configuration=config_json,
            queue_deadline_ms=int(created[2]) + _ms(self.settings.queue_timeout_s),
        )  # fmt: skip
        return await self._place(session, regions, waits_in, False)

    async def _place(
        self, session: Session, regions: Sequence[str], waits_in: Sequence[str], existing: bool
    ) -> Placement:
        sid = session.session_id
        for region in regions:
            got = await self._region(
                "region_reserve", region, sid, self._now(), self._claim_ms, self._fresh_ms
            )
            if not got[0]:
                continue
            iid, ip, epoch, deadline = _s(got[1]), _s(got[2]), int(got[3]), int(got[4])
            bound = await self._session(
                "session_bind", sid, region, iid, ip, str(epoch), str(deadline), self._now()
            )
            if not bound[0]:
                # Ended or placed by a concurrent call meanwhile: nobody touched this GPU.
                await self._release(region, iid, sid, epoch, to_ready=True)
                return Placement(await self.get_session(sid), existing=existing)
            assigned = dataclasses.replace(
                session, state=SessionState.ASSIGNED, region=region, instance_id=iid,
                private_ip=ip, epoch=epoch, claim_deadline_ms=deadline,
            )  # fmt: skip
            return Placement(assigned, existing=existing)
        return await self._enqueue(session, waits_in, existing)

    async def _enqueue(
        self, session: Session, waits_in: Sequence[str], existing: bool
    ) -> Placement:
        sid = session.session_id
        ticket = session.ticket or await self._r("incr", keys.ticket_key())
        got = await self._session("session_enqueue", sid, str(ticket), ",".join(waits_in))
        if not got[0]:  # placed or ended by a concurrent call meanwhile
            return Placement(await self.get_session(sid), existing=existing)
        ticket_in_force, deadline = got[1], got[2]
        for region in waits_in:
            _, _, ready = await self._region(
                "region_queue", region, "add", sid, _s(ticket_in_force), _s(deadline)
            )
            if ready:
                await self.dispatch(region)
        current = await self.get_session(sid)
        if current.state is not SessionState.QUEUED:
            return Placement(current, existing=existing)
        position, wait = await self.queue_position(current)
        return Placement(current, existing=existing, position=position, estimated_wait_s=wait)

    async def widen_queue(self, session_id: str, regions: Sequence[str]) -> None:
        """Let a waiting session also wait in more regions (a relaxed policy)."""
        session = await self.get_session(session_id)
        if session.state is not SessionState.QUEUED or session.ticket is None:
            return
        added = [r for r in regions if r not in session.queue_regions]
        if not added:
            return
        all_regions = (*session.queue_regions, *added)
        got = await self._session(
            "session_enqueue", session_id, str(session.ticket), ",".join(all_regions)
        )
        if not got[0]:
            return
        ticket, deadline = got[1], got[2]
        for region in added:
            await self._region("region_queue", region, "add", session_id, _s(ticket), _s(deadline))
            await self.dispatch(region)

    async def queue_position(self, session: Session) -> tuple[int, int]:
        """1-based position (best over its regions) and an estimated wait in seconds."""
        best: int | None = None
        capacity = 0
        for region in session.queue_regions:
            rank = await self._r("zrank", keys.region_key(region, "queue"), session.session_id)
            if rank is not None:
                best = rank + 1 if best is None else min(best, rank + 1)
            capacity += await self._serving_capacity(region)
        position = best or 0
        rate = await self.served.rate_per_s(session.queue_regions, await self.now_ms())
        return position, estimate_wait_s(position, rate, capacity, self.settings.avg_session_s)

    async def _serving_capacity(self, region: str) -> int:
        states = await self._r("hvals", keys.region_key(region, "state"))
        usable = {"ready", "reserved", "streaming", "recycling", "booting"}
        return sum(1 for s in states if _s(s) in usable)

    async def get_session(self, session_id: str) -> Session:
        if not keys.is_session_id(session_id):
            raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
        raw = await self._r("hgetall", keys.session_keys(session_id)[1])
        if not raw:
            raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
        h = {_s(k): _s(v) for k, v in raw.items()}

        def opt_int(name: str) -> int | None:
            return int(float(h[name])) if h.get(name) else None

        def csv(name: str) -> tuple[str, ...]:
            return tuple(x for x in h.get(name, "").split(",") if x)

        return Session(
            session_id=session_id,
            client_id=h["client_id"],
            secret=h["secret"],
            state=SessionState(h["state"]),
            regions=csv("regions"),
            created_ms=int(float(h["created_ms"])),
            model=h.get("model", ""),
            configuration=h.get("configuration", "{}"),
            region=h.get("region") or None,
            instance_id=h.get("instance_id") or None,
            private_ip=h.get("private_ip") or None,
            epoch=opt_int("epoch"),
            claim_deadline_ms=opt_int("claim_deadline_ms"),
            queue_regions=csv("queue_regions"),
            queue_deadline_ms=opt_int("queue_deadline_ms"),
            ticket=opt_int("ticket"),
            end_reason=EndReason(h["end_reason"]) if h.get("end_reason") else None,
            ended_ms=opt_int("ended_ms"),
        )

    async def end_session(
        self,
        session_id: str,
        reason: EndReason,
        *,
        epoch: int | None = None,
        required_state: SessionState | None = None,
    ) -> EndResult:
        """End a live session (idempotent). With `epoch`, only that assignment."""
        if not keys.is_session_id(session_id):
            raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
        got = await self._session(
            "session_end", session_id, reason.value, "" if epoch is None else str(epoch),
            self._now(), _ms(self.settings.ended_retention_s),
            required_state.value if required_state else "",
        )  # fmt: skip
        if not got[0]:
            state = _s(got[1])
            if state == "unknown":
                raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
            if state == "stale_epoch":
                raise StaleEpoch(f"session {session_id} is not at epoch {epoch}", field="epoch")
            prior = _s(got[2])
            return EndResult(False, SessionState(state), EndReason(prior) if prior else None)
        self.observer.session_ended(reason)
        region, iid, ep, queue_regions = (_s(x) for x in got[1:])
        if region and iid and ep:
            await self._release(region, iid, session_id, int(ep), to_ready=False)
        for r in (x for x in queue_regions.split(",") if x):
            if r in self._region_keys:
                await self._region("region_queue", r, "remove", session_id, "0", "0")
        return EndResult(True, SessionState.ENDED, reason)

    async def require_live(self, session_id: str) -> Session:
        session = await self.get_session(session_id)
        if session.state not in LIVE_SESSION_STATES:
            raise SessionNotLive(f"session {session_id} has ended", field="session_id")
        return session

    async def _release(
        self, region: str, iid: str, sid: str, epoch: int, *, to_ready: bool
    ) -> None:
        got = await self._region(
            "region_release", region, iid, sid, str(epoch), self._now(),
            "ready" if to_ready else "recycle", self._claim_ms,
        )  # fmt: skip
        if got[0]:
            await self._settle(region, [got[2]])

    # -- queue and repair ---------------------------------------------------

    async def dispatch(self, region: str, max_assignments: int = 100) -> int:
        """Serve this region's queue with its ready instances; returns binds made."""
        entries = await self._region(
            "region_dispatch", region, self._now(), self._claim_ms, self._fresh_ms, max_assignments
        )
        return await self._settle(region, entries)

    async def _settle(self, region: str, entries: Iterable[Any]) -> int:
        """Finish outbox follow-ups (idempotent), then strike them off."""
        bound = 0
        for raw in entries:
            entry = _s(raw)
            if not entry:
                continue
            parts = entry.split("|")
            if parts[0] == "bind":
                _, sid, iid, epoch, ip, deadline = parts
                ok = await self._session(
                    "session_bind", sid, region, iid, ip, epoch, deadline, self._now()
                )
                if ok[0]:
                    bound += 1
                    await self._leave_other_queues(sid, region)
                elif _s(ok[1]) != "assigned" or not await self._bound_to(sid, iid, int(epoch)):
                    await self._release(region, iid, sid, int(epoch), to_ready=True)
            elif parts[0] == "end":
                _, sid, iid, epoch, reason = parts
                required = SessionState.QUEUED if reason == EndReason.QUEUE_TIMEOUT else None
                # Stale or unknown: the session already moved on; nothing is owed.
                with contextlib.suppress(StaleEpoch, UnknownSession):
                    await self.end_session(
                        sid, EndReason(reason), epoch=int(epoch) if epoch else None,
                        required_state=required,
                    )  # fmt: skip
            await self._r("zrem", keys.region_key(region, "outbox"), entry)
        return bound

    async def _bound_to(self, sid: str, iid: str, epoch: int) -> bool:
        try:
            s = await self.get_session(sid)
        except UnknownSession:
            return False
        return s.instance_id == iid and s.epoch == epoch

    async def _leave_other_queues(self, sid: str, served_in: str) -> None:
        session = await self.get_session(sid)
        now = await self.now_ms()
        self.observer.queue_served(max(0.0, (now - session.created_ms) / 1000))
        await self.served.record(served_in, sid, now)
        for r in session.queue_regions:
            if r != served_in and r in self._region_keys:
                await self._region("region_queue", r, "remove", sid, "0", "0")

    async def reap(self, region: str) -> ReapReport:
        """Expire claims, reconnect windows, lost instances and queue deadlines,
        finish follow-ups that crashed callers left, repair leaks. Safe to run
        from several processes at once."""
        report = ReapReport()
        created = await self._region(
            "region_reap", region, self._now(), _ms(self.settings.lost_after_s),
            self.settings.reap_batch,
        )  # fmt: skip
        for raw in created:
            report.count(_s(raw).split("|")[-1] if _s(raw).startswith("end") else "bind")
        report.binds += await self._settle(region, created)
        report.binds += await self._settle(region, await self._stale_outbox(region))
        await self._repair_streaming(region)
        await self.dispatch(region)
        return report

    async def now_ms(self) -> int:
        """The broker's clock: the injected one, else Redis TIME."""
        now = self._now()
        if now:
            return int(now)
        seconds, micros = await self._r("time")
        return int(seconds) * 1000 + int(micros) // 1000

    async def count_arrival(self, region: str) -> None:
        """One session creation that chose `region` first (pool managers forecast from it)."""
        minute = await self.now_ms() // 60_000
        await self._r("hincrby", keys.region_key(region, "arrivals"), str(minute), 1)

    async def arrivals_per_min(self, region: str, minutes: int = 15) -> list[int]:
        """Creations per minute, oldest first, the current minute last."""
        key = keys.region_key(region, "arrivals")
        now_minute = await self.now_ms() // 60_000
        raw = {int(_s(k)): int(_s(v)) for k, v in (await self._r("hgetall", key)).items()}
        stale = [str(m) for m in raw if m < now_minute - 60]
        if stale:
            await self._r("hdel", key, *stale)
        return [raw.get(m, 0) for m in range(now_minute - minutes + 1, now_minute + 1)]

    async def _stale_outbox(self, region: str) -> list[Any]:
        cutoff = await self.now_ms() - _ms(self.settings.outbox_grace_s)
        result: list[Any] = await self._r(
            "zrangebyscore",
            keys.region_key(region, "outbox"),
            "-inf",
            cutoff,
            start=0,
            num=self.settings.reap_batch,
        )
        return result

    async def _repair_streaming(self, region: str) -> None:
        """A streaming instance whose session ended (its release crashed) is
        released; a session the instance serves but that still says assigned
        (its connect crashed) is marked connected."""
        serving = await self._r("hgetall", keys.region_key(region, "sess"))
        if not serving:
            return
        states = await self._r("hgetall", keys.region_key(region, "state"))
        epochs = await self._r("hgetall", keys.region_key(region, "epoch"))
        for raw_iid, raw_sid in serving.items():
            iid, sid = _s(raw_iid), _s(raw_sid)
            if _s(states.get(raw_iid, b"")) != InstanceState.STREAMING.value:
                continue
            epoch = int(_s(epochs.get(raw_iid, b"0")))
            try:
                s = await self.get_session(sid)
            except UnknownSession:
                s = None
            if s is None or s.state is SessionState.ENDED or s.epoch != epoch:
                await self._release(region, iid, sid, epoch, to_ready=False)
            elif s.state is SessionState.ASSIGNED:
                await self._session("session_connected", sid, str(epoch), self._now())

    # -- views --------------------------------------------------------------

    async def snapshot(self, region: str) -> RegionSnapshot:
        self._rkeys(region)
        states = await self._r("hvals", keys.region_key(region, "state"))
        counts = {s.value: 0 for s in InstanceState}
        for raw in states:
            counts[_s(raw)] += 1
        queue_depth = await self._r("zcard", keys.region_key(region, "queue"))
        meta = await self._r("hgetall", keys.region_key(region, "meta"))
        m = {_s(k): _s(v) for k, v in meta.items()}
        return RegionSnapshot(
            region=region,
            instances=counts,
            queue_depth=int(queue_depth),
            live_sessions=counts["reserved"] + counts["streaming"],
            constrained=m.get("constrained") == "1",
            constraint_reason=m.get("reason", ""),
        )

    async def set_constrained(self, region: str, constrained: bool, reason: str = "") -> None:
        self._rkeys(region)
        await self._r(
            "hset",
            keys.region_key(region, "meta"),
            mapping={"constrained": "1" if constrained else "0", "reason": reason[:200]},
        )

    async def instance_details(self, region: str) -> list[dict[str, Any]]:
        """Every instance of a region with its state, session and ages (ops views)."""
        names = ("state", "sess", "ip", "since", "hb", "drain", "info")
        rk = self._rkeys(region)
        state, sess, ip, since, _, drain, info = [
            {_s(k): _s(v) for k, v in (await self._r("hgetall", rk[keys.REGION_KEY_NAMES.index(n)])).items()}
            if n != "hb" else {} for n in names
        ]  # fmt: skip
        hb = {
            _s(k): float(v)
            for k, v in await self._r(
                "zrange", rk[keys.REGION_KEY_NAMES.index("hb")], 0, -1, withscores=True
            )
        }
        now = await self.now_ms()
        rows = []
        for iid, st in sorted(state.items()):
            meta = json.loads(info.get(iid, "{}"))
            rows.append({
                "instance_id": iid, "state": st, "session_id": sess.get(iid),
                "private_ip": ip.get(iid), "instance_type": meta.get("instance_type", ""),
                "state_age_s": round((now - int(float(since.get(iid, now)))) / 1000, 1),
                "heartbeat_age_s": round((now - hb[iid]) / 1000, 1) if iid in hb else None,
                "draining": drain.get(iid) == "1",
            })  # fmt: skip
        return rows

    async def instance_states(self, region: str) -> dict[str, InstanceState]:
        raw = await self._r("hgetall", keys.region_key(region, "state"))
        return {_s(k): InstanceState(_s(v)) for k, v in raw.items()}

    async def instance_sessions(self, region: str) -> dict[str, tuple[str, int]]:
        """instance id -> (session id, epoch) for every serving instance."""
        serving = await self._r("hgetall", keys.region_key(region, "sess"))
        epochs = await self._r("hgetall", keys.region_key(region, "epoch"))
        return {_s(k): (_s(v), int(_s(epochs.get(k, b"0")))) for k, v in serving.items()}
