"""Waiting users back in line after Redis lost their session.

A queued session (or one assigned to an instance whose agent never learnt of
it: a failover lost the last writes) exists only in Redis; no agent reports
it. Its user's s2 secret carries the facts it was created from
(control_plane/session_secrets.py); when they read or end a session Redis does
not know, `Restore` recreates it as queued through the lifecycle
(session_restore.lua) and places it as a repeated create would. Its ticket is
its creation time below every counter ticket, so rebuilt sessions keep their
order among themselves and go ahead of anyone who arrived after the loss
(docs/operations.md "Redis loses data" says what that costs after a partial
loss).
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane import keys
from control_plane.broker import placing
from control_plane.broker.placing import Placing
from control_plane.broker.reads import Reads
from control_plane.broker.sessions import Sessions
from control_plane.broker.store import Store, ms
from control_plane.broker_settings import BrokerSettings
from control_plane.domain import Session, SessionExpired
from control_plane.session_secrets import SessionFacts
from streamfleet.lifecycle import SessionState

# Rebuilt tickets: creation ms minus this, so negative (ahead of the counter's
# 1, 2, ...) and exact as a sorted-set score (|ticket| < 2**53).
REBUILT_TICKET_BASE = 2**52
# A secret minted this far ahead of the store's clock (replicas' wall clocks
# against Redis TIME) still counts as minted now.
CLOCK_SKEW_MS = 60_000


def rebuilt_ticket(created_ms: int) -> int:
    return created_ms - REBUILT_TICKET_BASE


def rebuild_window_ms(settings: BrokerSettings) -> int:
    """How long after its creation a session may be rebuilt from its secret: a
    live one is at most queued for the queue timeout, then assigned for a claim
    (past that it streams, and its agent reports it). Never beyond the ended
    retention: a session that ended is forgotten no sooner than that after its
    creation, so a session this young that Redis does not know was lost, not
    expired."""
    live_ms = ms(settings.queue_timeout_s) + ms(settings.claim_ttl_s)
    return min(live_ms, ms(settings.ended_retention_s))


def rebuild_queue_deadline(facts: SessionFacts, now_ms: int, settings: BrokerSettings) -> int:
    """Its original queue deadline, but at least a claim's time from now (it
    may have been assigned near its deadline before the loss)."""
    return max(facts.created_ms + ms(settings.queue_timeout_s), now_ms + ms(settings.claim_ttl_s))


@dataclass(frozen=True, slots=True)
class Rebuild:
    """The session as it is after a rebuild attempt (None: it cannot be), or,
    with `wait_ms`, not yet: a read first found it missing less than one
    heartbeat period ago, and its agent may still report it; ask again then."""

    session: Session | None
    wait_ms: int = 0


class Restore:
    def __init__(self, store: Store, reads: Reads, sessions: Sessions) -> None:
        self.store = store
        self.reads = reads
        self.sessions = sessions

    async def rebuild(self, facts: SessionFacts, secret: str, *, end: bool = False) -> Rebuild:
        """Rebuild from `facts` (verified by the caller): back in line (or
        assigned if an instance was ready), or ended when `end` (its user ends
        it: nothing is queued, and no wait). None when it cannot be: its client
        holds another live session, or none of its regions is served here. A
        session that exists is answered as it is (an agent's report rebuilt it
        first). Raises SessionExpired when too old."""
        settings = self.store.settings
        now = await self.reads.now_ms()
        age = now - facts.created_ms
        if age >= rebuild_window_ms(settings) or age < -CLOCK_SKEW_MS:
            raise SessionExpired(
                "this session is too old to be rebuilt after the store lost it",
                field="session_secret",
            )
        if facts.session_id.split("-", 1)[0] != keys.client_hash(facts.client_id):
            return Rebuild(None)  # not one session_create could have made
        known = self.store.region_keys
        ranked = tuple(r for r in facts.ranked if r in known)
        waits = tuple(r for r in facts.waits_in if r in known)
        if not waits:
            return Rebuild(None)
        # Journaled like a create: a caller that dies between the calls below
        # leaves it to the reaper to finish (Sessions.resume_placement).
        home = ranked[0] if ranked else waits[0]
        journal = placing.encode(Placing(facts.session_id, ranked, waits))
        await self.reads.placing_add(home, journal, now)
        got = await self.store.restore(
            facts, secret, ticket=rebuilt_ticket(facts.created_ms),
            queue_deadline_ms=rebuild_queue_deadline(facts, now, settings), ended=end,
        )  # fmt: skip
        if got.why == "wait":
            await self.reads.placing_done(home, journal)
            return Rebuild(None, wait_ms=max(1, got.wait_ms))
        session = await self.reads.session(facts.session_id)
        if got.ok and session is not None and session.state is SessionState.QUEUED:
            session = (await self.sessions.place_again(session, ranked, waits)).session
        await self.reads.placing_done(home, journal)
        if not got.ok and got.why == "client_busy":
            return Rebuild(None)
        return Rebuild(session)
