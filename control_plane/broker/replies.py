"""One decoder per Lua script reply: positional arrays in, small dataclasses out.

The only place that indexes a script's reply. Each decoder's docstring names
the script whose header (control_plane/lua/<script>.lua) defines the array.
Pure: no I/O. Values arrive as bytes, str or int (redis-py without
decode_responses); `text` and `number` normalise them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from control_plane.broker import outbox
from control_plane.broker.outbox import (
    BindEntry,
    EndEntry,
    OutboxEntry,
    RebuildEntry,
    RequeueEntry,
)
from control_plane.queue_estimate import ServedWindow, window_from_scores
from streamfleet.lifecycle import EndReason, InstanceState, SessionState

Raw = bytes | str | int | float
RawReply = Sequence[Raw]


def text(value: Raw) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def number(value: Raw) -> int:
    return int(float(text(value)))


def entry_or_none(value: Raw) -> OutboxEntry | None:
    raw = text(value)
    return outbox.decode(raw) if raw else None


def bind_or_none(value: Raw) -> BindEntry | None:
    entry = entry_or_none(value)
    if entry is not None and not isinstance(entry, BindEntry):
        raise outbox.OutboxFormatError(f"expected a bind entry, got {entry!r}")
    return entry


def placement_or_none(value: Raw) -> BindEntry | RebuildEntry | None:
    """A bind (a queue head served) or a rebuild (a session taken back after lost data)."""
    entry = entry_or_none(value)
    if entry is not None and not isinstance(entry, BindEntry | RebuildEntry):
        raise outbox.OutboxFormatError(f"expected a bind or rebuild entry, got {entry!r}")
    return entry


def end_or_none(value: Raw) -> EndEntry | None:
    entry = entry_or_none(value)
    if entry is not None and not isinstance(entry, EndEntry):
        raise outbox.OutboxFormatError(f"expected an end entry, got {entry!r}")
    return entry


def entries(reply: Sequence[Raw]) -> list[OutboxEntry]:
    """region_reap, region_dispatch: a list of outbox entries."""
    return [e for e in (entry_or_none(x) for x in reply) if e is not None]


def requeue_or_none(value: Raw) -> RequeueEntry | None:
    entry = entry_or_none(value)
    if entry is not None and not isinstance(entry, RequeueEntry):
        raise outbox.OutboxFormatError(f"expected a requeue entry, got {entry!r}")
    return entry


@dataclass(frozen=True, slots=True)
class Registered:
    """region_register: {state, bind, rebuild or requeue entry or ''}."""

    state: InstanceState
    entry: BindEntry | RebuildEntry | RequeueEntry | None


def registered(reply: RawReply) -> Registered:
    entry = entry_or_none(reply[1])
    if isinstance(entry, EndEntry):
        raise outbox.OutboxFormatError(f"expected no end entry, got {entry!r}")
    return Registered(InstanceState(text(reply[0])), entry)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """region_heartbeat: {state, sid or '', epoch, claim ms or '', commands csv,
    bind or rebuild entry or '', requeue entry or ''}."""

    state: InstanceState
    session_id: str | None
    epoch: int
    claim_deadline_ms: int | None
    commands: tuple[str, ...]
    entry: BindEntry | RebuildEntry | None
    requeued: RequeueEntry | None = None


def heartbeat(reply: RawReply) -> Heartbeat | None:
    """None when the instance is unknown (it must register again)."""
    if text(reply[0]) == "unknown":
        return None
    claim = text(reply[3])
    return Heartbeat(
        state=InstanceState(text(reply[0])),
        session_id=text(reply[1]) or None,
        epoch=number(reply[2]),
        claim_deadline_ms=number(claim) if claim else None,
        commands=tuple(c for c in text(reply[4]).split(",") if c),
        entry=placement_or_none(reply[5]),
        requeued=requeue_or_none(reply[6]) if len(reply) > 6 else None,
    )


@dataclass(frozen=True, slots=True)
class Changed:
    """region_client, region_release, region_drain, region_terminate:
    {1, state?, entry?} when applied, {0, why} when not."""

    ok: bool
    state: str
    entry: OutboxEntry | None = None


def client(reply: RawReply) -> Changed:
    return Changed(bool(number(reply[0])), text(reply[1]))


def release(reply: RawReply) -> Changed:
    if not number(reply[0]):
        return Changed(False, text(reply[1]))
    return Changed(True, text(reply[1]), bind_or_none(reply[2]))


def drain(reply: RawReply) -> Changed:
    if not number(reply[0]):
        return Changed(False, text(reply[1]))
    return Changed(True, text(reply[1]), end_or_none(reply[2]))


def replace(reply: RawReply) -> Changed:
    """region_replace: {1, state, requeue entry} or {0, 'stale'}."""
    if not number(reply[0]):
        return Changed(False, text(reply[1]))
    return Changed(True, text(reply[1]), requeue_or_none(reply[2]))


def terminate(reply: RawReply) -> Changed:
    if not number(reply[0]):
        return Changed(False, text(reply[1]))
    return Changed(True, InstanceState.TERMINATED.value, requeue_or_none(reply[1]))


@dataclass(frozen=True, slots=True)
class Reserved:
    """region_reserve: {1, iid, ip, epoch, claim deadline ms}."""

    instance_id: str
    private_ip: str
    epoch: int
    claim_deadline_ms: int


def reserve(reply: RawReply) -> Reserved | str:
    """A reservation, or why not ('queue_ahead', 'no_capacity')."""
    if not number(reply[0]):
        return text(reply[1])
    return Reserved(text(reply[1]), text(reply[2]), number(reply[3]), number(reply[4]))


@dataclass(frozen=True, slots=True)
class Queued:
    """region_queue: {1, position or 0, ready instances}."""

    position: int
    ready: int


def queue(reply: RawReply) -> Queued:
    return Queued(number(reply[1]), number(reply[2]))


@dataclass(frozen=True, slots=True)
class Created:
    """session_create: {1, sid, created ms} or {0, existing sid}."""

    created: bool
    session_id: str
    created_ms: int | None


def create(reply: RawReply) -> Created:
    if number(reply[0]):
        return Created(True, text(reply[1]), number(reply[2]))
    return Created(False, text(reply[1]), None)


@dataclass(frozen=True, slots=True)
class Outcome:
    """session_bind, session_connected: {1} or {0, state or why}."""

    ok: bool
    why: str = ""


def outcome(reply: RawReply) -> Outcome:
    if number(reply[0]):
        return Outcome(True)
    return Outcome(False, text(reply[1]))


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """session_rebuild: {1, state it had or '', displaced region, instance id, epoch
    (or '' x3)} or {0, 'ended'/'elsewhere'/'client_busy'}."""

    ok: bool
    why: str = ""
    had: SessionState | None = None
    displaced: tuple[str, str, int] | None = None


def rebuild(reply: RawReply) -> Rebuilt:
    if not number(reply[0]):
        return Rebuilt(False, text(reply[1]))
    had = text(reply[1])
    region, iid, epoch = (text(x) for x in reply[2:5])
    return Rebuilt(
        True,
        had=SessionState(had) if had else None,
        displaced=(region, iid, int(epoch)) if iid else None,
    )


@dataclass(frozen=True, slots=True)
class Restored:
    """session_restore: {1, state written}, {0, 'wait', ms left} or
    {0, 'exists' / 'client_busy'}."""

    ok: bool
    why: str = ""
    state: SessionState | None = None
    wait_ms: int = 0


def restored(reply: RawReply) -> Restored:
    if not number(reply[0]):
        why = text(reply[1])
        return Restored(False, why, wait_ms=number(reply[2]) if why == "wait" else 0)
    return Restored(True, state=SessionState(text(reply[1])))


@dataclass(frozen=True, slots=True)
class Enqueued:
    """session_enqueue: {1, ticket in force, queue deadline ms} or {0, state}."""

    ok: bool
    ticket: int = 0
    queue_deadline_ms: int = 0
    state: str = ""


def enqueue(reply: RawReply) -> Enqueued:
    if not number(reply[0]):
        return Enqueued(False, state=text(reply[1]))
    return Enqueued(True, number(reply[1]), number(reply[2]))


@dataclass(frozen=True, slots=True)
class Requeued:
    """session_requeue: {1, ticket, queue deadline ms, re-placements, 1 when this
    call moved it (0: a repeat)} or {0, state or 'stale_epoch'/'limit'/'unknown'}."""

    ok: bool
    why: str = ""
    ticket: int = 0
    queue_deadline_ms: int = 0
    replaced: int = 0
    fresh: bool = False


def requeue(reply: RawReply) -> Requeued:
    if not number(reply[0]):
        return Requeued(False, text(reply[1]))
    fresh = bool(number(reply[4]))
    return Requeued(True, "", number(reply[1]), number(reply[2]), number(reply[3]), fresh)


@dataclass(frozen=True, slots=True)
class Ended:
    """session_end when this call ended it: {1, region, iid, epoch, queue regions csv}."""

    region: str | None
    instance_id: str | None
    epoch: int | None
    queue_regions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotEnded:
    """session_end otherwise: {0, state or 'unknown'/'stale_epoch'/'not_served', prior end
    reason or ''}."""

    state: str
    prior_reason: EndReason | None

    @property
    def session_state(self) -> SessionState:
        return SessionState(self.state)


def end(reply: RawReply) -> Ended | NotEnded:
    if not number(reply[0]):
        prior = text(reply[2])
        return NotEnded(text(reply[1]), EndReason(prior) if prior else None)
    region, iid, epoch, queues = (text(x) for x in reply[1:5])
    return Ended(
        region or None,
        iid or None,
        int(epoch) if epoch else None,
        tuple(r for r in queues.split(",") if r),
    )


def counts(reply: RawReply) -> dict[str, int]:
    """region_recount: flat {state, count, ...} (states with instances only)."""
    pairs = zip(reply[0::2], reply[1::2], strict=True)
    return {text(state): number(n) for state, n in pairs if number(n)}


@dataclass(frozen=True, slots=True)
class NotPlaced:
    """region_place without a reservation: {0, 'queue_ahead'/'no_capacity', now ms}
    (journaled when asked), or {0, 'rate_limited', ms until the window resets}."""

    why: str
    reset_ms: int = 0

    @property
    def rate_limited(self) -> bool:
        return self.why == "rate_limited"


def place(reply: RawReply) -> Reserved | NotPlaced:
    """region_place: {1, iid, ip, epoch, claim deadline ms, now ms} or NotPlaced."""
    if number(reply[0]):
        return Reserved(text(reply[1]), text(reply[2]), number(reply[3]), number(reply[4]))
    why = text(reply[1])
    return NotPlaced(why, number(reply[2]) if why == "rate_limited" else 0)


@dataclass(frozen=True, slots=True)
class Feed:
    """region_feed: {now ms, queue version, members or false, counts flat,
    served in window, oldest served ms or '', newest served ms or ''}."""

    now_ms: int
    version: str
    members: list[str] | None  # None: unchanged since the version the caller holds
    counts: dict[str, int]
    counts_complete: bool
    served: int
    oldest_served_ms: int | None
    newest_served_ms: int | None

    @property
    def window(self) -> ServedWindow:
        """The queue heads served in the window, as ages at the read's own clock."""
        return window_from_scores(
            self.served, self.oldest_served_ms, self.newest_served_ms, self.now_ms
        )


def feed(reply: RawReply) -> Feed:
    raw_members = reply[2]
    members = [text(m) for m in raw_members] if isinstance(raw_members, list | tuple) else None
    flat = reply[3]
    assert isinstance(flat, list | tuple)
    pairs = {text(k): text(v) for k, v in zip(flat[0::2], flat[1::2], strict=True)}
    complete = pairs.pop("v", None) == "1"
    oldest, newest = text(reply[5]), text(reply[6])
    return Feed(
        now_ms=number(reply[0]),
        version=text(reply[1]),
        members=members,
        counts={k: int(float(v)) for k, v in pairs.items() if int(float(v))},
        counts_complete=complete,
        served=number(reply[4]),
        oldest_served_ms=number(oldest) if oldest else None,
        newest_served_ms=number(newest) if newest else None,
    )
