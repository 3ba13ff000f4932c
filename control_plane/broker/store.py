"""The broker's state changes: one method per Lua script, typed in and out.

Each method builds the script's KEYS (control_plane/keys.py) and ARGV in the
order its header lists, and returns the decoded reply (replies.py). No
service code names a script, a key or a Redis command.
"""

from __future__ import annotations

from collections.abc import Sequence

from control_plane import keys
from control_plane.broker import replies
from control_plane.broker.outbox import OutboxEntry, RebuildEntry
from control_plane.broker.plumbing import Connection
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import Clock
from control_plane.domain import UnknownRegion
from control_plane.session_secrets import SessionFacts
from streamfleet.ids import is_session_id
from streamfleet.lifecycle import EndReason, InstanceState, SessionState
from streamfleet.wire import MAX_EPOCH

# A re-placed session's ticket is its re-placement time (ms) minus this: below
# every arrival ticket (a counter from 1), exact in a double (session_requeue.lua).
REPLACED_TICKET_OFFSET = 2**52

# What an agent says it serves: (session id, epoch, its player has connected).
Served = tuple[str, int, bool]
# The session an agent last ended itself, as it reports it at each heartbeat:
# (session id, epoch, reason; instance_lost = its renderer crashed: re-place it).
AgentEnded = tuple[str, int, EndReason]
# A request counted against a rate limit: (bucket, requests allowed per window, window ms).
RateLimit = tuple[str, int, int]


def _adoptable(sid: str, epoch: int) -> bool:
    """A report the scripts may take a session back from (they write its epoch)."""
    return is_session_id(sid) and 1 <= epoch <= MAX_EPOCH


def ms(seconds: float) -> int:
    return int(seconds * 1000)


class Store:
    def __init__(
        self, conn: Connection, regions: Sequence[str], settings: BrokerSettings, clock: Clock
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.clock = clock
        self.region_keys = {r: keys.region_keys(r) for r in regions}

    def rkeys(self, region: str) -> list[str]:
        try:
            return self.region_keys[region]
        except KeyError:
            raise UnknownRegion(f"unknown region {region!r}", field="region") from None

    def now(self) -> str:
        return self.clock.now_arg()

    @property
    def claim_ms(self) -> int:
        return ms(self.settings.claim_ttl_s)

    @property
    def fresh_ms(self) -> int:
        return ms(self.settings.lost_after_s)

    async def _region(self, name: str, region: str, *args: str | int) -> list[replies.Raw]:
        return await self.conn.script(name, self.rkeys(region), args)

    async def _session(self, name: str, sid: str, *args: str | int) -> list[replies.Raw]:
        return await self.conn.script(name, keys.session_keys(sid), [sid, *args])

    # -- region scripts -------------------------------------------------------

    async def register(
        self, region: str, iid: str, ip: str, info_json: str, *, ready: bool,
        nonce_digest: str = "", max_epoch: int = 0, served: Served | None = None,
    ) -> replies.Registered:  # fmt: skip
        sid, epoch, connected = (
            served if served and _adoptable(served[0], served[1]) else ("", 0, False)
        )
        raw = await self._region(
            "region_register", region, iid, ip, info_json, self.now(), "1" if ready else "0",
            self.claim_ms, nonce_digest, str(max_epoch), sid, str(epoch),
            "1" if connected else "0",
        )  # fmt: skip
        return replies.registered(raw)

    async def heartbeat(
        self, region: str, iid: str, reported: InstanceState, sid: str | None, epoch: int | None,
        max_epoch: int = 0, ended: AgentEnded | None = None,
    ) -> replies.Heartbeat | None:  # fmt: skip
        esid, eepoch = (ended[0], str(ended[1])) if ended else ("", "")
        raw = await self._region(
            "region_heartbeat", region, iid, self.now(), reported.value, sid or "",
            "" if epoch is None else str(epoch), self.claim_ms, str(max_epoch),
            "1" if sid is not None and epoch is not None and _adoptable(sid, epoch) else "0",
            esid, eepoch,
        )  # fmt: skip
        return replies.heartbeat(raw)

    async def client(
        self, region: str, iid: str, sid: str, epoch: int, *, connected: bool
    ) -> replies.Changed:
        raw = await self._region(
            "region_client", region, iid, sid, str(epoch), self.now(),
            "connected" if connected else "disconnected", ms(self.settings.reconnect_window_s),
        )  # fmt: skip
        return replies.client(raw)

    async def reserve(self, region: str, sid: str) -> replies.Reserved | str:
        raw = await self._region(
            "region_reserve", region, sid, self.now(), self.claim_ms, self.fresh_ms
        )
        return replies.reserve(raw)

    async def place(
        self, region: str, sid: str, *, journal: str = "", rate: RateLimit | None = None,
        count_arrival: bool = False,
    ) -> replies.Reserved | replies.NotPlaced:  # fmt: skip
        """A new session's region side in one call: rate limit, arrival, reservation,
        else the placement journal (when `journal` is given)."""
        bucket, allowed, window_ms = rate or ("", 0, 0)
        script_keys = [
            *self.rkeys(region), keys.region_key(region, "arrivals"),
            keys.region_key(region, "placing"), keys.region_ratelimit_key(region, bucket),
        ]  # fmt: skip
        raw = await self.conn.script("region_place", script_keys, [
            sid, self.now(), self.claim_ms, self.fresh_ms, journal, allowed, window_ms,
            "1" if count_arrival else "0",
        ])  # fmt: skip
        return replies.place(raw)

    async def release(
        self, region: str, iid: str, sid: str, epoch: int, *, to_ready: bool
    ) -> replies.Changed:
        raw = await self._region(
            "region_release", region, iid, sid, str(epoch), self.now(),
            "ready" if to_ready else "recycle", self.claim_ms,
        )  # fmt: skip
        return replies.release(raw)

    async def replace(self, region: str, iid: str, sid: str, epoch: int) -> replies.Changed:
        raw = await self._region("region_replace", region, iid, sid, str(epoch), self.now())
        return replies.replace(raw)

    async def drain(self, region: str, iid: str, *, force: bool) -> replies.Changed:
        raw = await self._region("region_drain", region, iid, self.now(), "1" if force else "0")
        return replies.drain(raw)

    async def terminate(self, region: str, iid: str) -> replies.Changed:
        return replies.terminate(await self._region("region_terminate", region, iid, self.now()))

    async def queue_add(
        self, region: str, sid: str, ticket: int, deadline_ms: int
    ) -> replies.Queued:
        raw = await self._region("region_queue", region, "add", sid, ticket, deadline_ms)
        return replies.queue(raw)

    async def queue_remove(self, region: str, sid: str) -> None:
        await self._region("region_queue", region, "remove", sid, "0", "0")

    async def dispatch(self, region: str, max_assignments: int) -> list[OutboxEntry]:
        raw = await self._region(
            "region_dispatch", region, self.now(), self.claim_ms, self.fresh_ms, max_assignments
        )
        return replies.entries(raw)

    async def reap(self, region: str, period_s: float = 0.0) -> list[OutboxEntry]:
        # Ordinary passes, `period_s` apart, must never look like a pause.
        gap_ms = ms(max(self.settings.watch_gap, 2 * period_s))
        raw = await self._region(
            "region_reap", region, self.now(), ms(self.settings.lost_after_s),
            self.settings.reap_batch, ms(self.settings.instance_retention_s), gap_ms,
        )  # fmt: skip
        return replies.entries(raw)

    # -- session scripts ------------------------------------------------------

    async def create(
        self, sid: str, client_id: str, secret: str, regions: Sequence[str], model: str,
        configuration_json: str, bound: tuple[str, replies.Reserved] | None = None,
    ) -> replies.Created:  # fmt: skip
        """`bound`: (region, reservation) made for it first: it is created assigned."""
        region, r = bound if bound else ("", None)
        placed = (
            [region, r.instance_id, r.private_ip, str(r.epoch), str(r.claim_deadline_ms)]
            if r else []
        )  # fmt: skip
        raw = await self._session(
            "session_create", sid, client_id, secret, ",".join(regions), self.now(), model,
            configuration_json, ms(self.settings.queue_timeout_s), *placed,
        )  # fmt: skip
        return replies.create(raw)

    async def bind(
        self, sid: str, region: str, iid: str, ip: str, epoch: int, claim_deadline_ms: int
    ) -> replies.Outcome:
        raw = await self._session(
            "session_bind", sid, region, iid, ip, str(epoch), str(claim_deadline_ms), self.now()
        )
        return replies.outcome(raw)

    async def rebuild(self, sid: str, region: str, e: RebuildEntry, secret: str) -> replies.Rebuilt:
        raw = await self._session(
            "session_rebuild", sid, region, e.instance_id, e.private_ip, str(e.epoch),
            e.state.value, "" if e.claim_deadline_ms is None else str(e.claim_deadline_ms),
            secret, self.now(),
        )  # fmt: skip
        return replies.rebuild(raw)

    async def requeue(self, sid: str, iid: str, epoch: int) -> replies.Requeued:
        raw = await self._session(
            "session_requeue", sid, str(epoch), self.now(), ms(self.settings.queue_timeout_s),
            self.settings.max_replacements, str(REPLACED_TICKET_OFFSET), iid,
        )  # fmt: skip
        return replies.requeue(raw)

    async def restore(
        self, facts: SessionFacts, secret: str, *, ticket: int, queue_deadline_ms: int,
        ended: bool,
    ) -> replies.Restored:  # fmt: skip
        sid = facts.session_id
        raw = await self.conn.script(
            "session_restore", [*keys.session_keys(sid), keys.missing_key(sid)],
            [sid, "ended" if ended else "queued", facts.client_id, secret,
             ",".join(facts.regions), str(facts.created_ms), facts.model, facts.configuration,
             str(queue_deadline_ms), str(ticket), ",".join(facts.waits_in), self.now(),
             ms(self.settings.ended_retention_s), ms(self.settings.heartbeat_interval_s),
             ms(self.settings.queue_timeout_s + self.settings.claim_ttl_s)],
        )  # fmt: skip
        return replies.restored(raw)

    async def connected(self, sid: str, epoch: int) -> replies.Outcome:
        return replies.outcome(
            await self._session("session_connected", sid, str(epoch), self.now())
        )

    async def enqueue(self, sid: str, ticket: int, regions: Sequence[str]) -> replies.Enqueued:
        raw = await self._session("session_enqueue", sid, str(ticket), ",".join(regions))
        return replies.enqueue(raw)

    async def end(
        self,
        sid: str,
        reason: EndReason,
        epoch: int | None,
        required: SessionState | None,
        served_by: tuple[str, str] | None = None,
    ) -> replies.Ended | replies.NotEnded:
        region, iid = served_by or ("", "")
        raw = await self._session(
            "session_end", sid, reason.value, "" if epoch is None else str(epoch), self.now(),
            ms(self.settings.ended_retention_s), required.value if required else "", region, iid,
        )  # fmt: skip
        return replies.end(raw)
