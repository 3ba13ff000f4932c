"""The outbox entry codec: follow-ups a region owes the session side.

Lua writes them (control_plane/lua/_common.lua `outbox_bind`/`outbox_end`/
`outbox_rebuild`/`outbox_requeue`) in
the same script that changes the region, so a crashed caller's follow-up is
never lost; the caller (or the reaper) decodes and finishes them here.
Fields are `|`-separated; no field may contain `|` (ids, IPs and reasons never do).
"""

from __future__ import annotations

from dataclasses import dataclass

from streamfleet.lifecycle import EndReason, SessionState


@dataclass(frozen=True, slots=True)
class BindEntry:
    """Bind the session to the instance the region reserved for it."""

    session_id: str
    instance_id: str
    epoch: int
    private_ip: str
    claim_deadline_ms: int


@dataclass(frozen=True, slots=True)
class EndEntry:
    """End the session for `reason`, fenced by `epoch` when it had an instance."""

    session_id: str
    instance_id: str | None
    epoch: int | None
    reason: EndReason


@dataclass(frozen=True, slots=True)
class RebuildEntry:
    """Rebuild the session an agent still serves after Redis lost it (the region
    took the instance back at `epoch`); `state` is assigned or connected."""

    session_id: str
    instance_id: str
    epoch: int
    private_ip: str
    state: SessionState
    claim_deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class RequeueEntry:
    """Re-place the session: its instance stopped serving it at `epoch` (lost,
    restarted, or its renderer crashed); it goes back to the head of its queues."""

    session_id: str
    instance_id: str
    epoch: int


OutboxEntry = BindEntry | EndEntry | RebuildEntry | RequeueEntry


class OutboxFormatError(ValueError):
    pass


def encode(entry: OutboxEntry) -> str:
    if isinstance(entry, BindEntry):
        fields = [
            "bind", entry.session_id, entry.instance_id, str(entry.epoch),
            entry.private_ip, str(entry.claim_deadline_ms),
        ]  # fmt: skip
    elif isinstance(entry, RebuildEntry):
        fields = [
            "rebuild", entry.session_id, entry.instance_id, str(entry.epoch), entry.private_ip,
            entry.state.value,
            "" if entry.claim_deadline_ms is None else str(entry.claim_deadline_ms),
        ]  # fmt: skip
    elif isinstance(entry, RequeueEntry):
        fields = ["requeue", entry.session_id, entry.instance_id, str(entry.epoch)]
    else:
        fields = [
            "end", entry.session_id, entry.instance_id or "",
            "" if entry.epoch is None else str(entry.epoch), entry.reason.value,
        ]  # fmt: skip
    if any("|" in f for f in fields):
        raise OutboxFormatError(f"a field contains '|': {fields!r}")
    return "|".join(fields)


def decode(text: str) -> OutboxEntry:
    parts = text.split("|")
    try:
        if parts[0] == "bind" and len(parts) == 6:
            _, sid, iid, epoch, ip, deadline = parts
            return BindEntry(sid, iid, int(epoch), ip, int(float(deadline)))
        if parts[0] == "rebuild" and len(parts) == 7:
            _, sid, iid, epoch, ip, state, deadline = parts
            return RebuildEntry(
                sid, iid, int(epoch), ip, SessionState(state),
                int(float(deadline)) if deadline else None,
            )  # fmt: skip
        if parts[0] == "requeue" and len(parts) == 4:
            _, sid, iid, epoch = parts
            return RequeueEntry(sid, iid, int(epoch))
        if parts[0] == "end" and len(parts) == 5:
            _, sid, iid, epoch, reason = parts
            return EndEntry(sid, iid or None, int(epoch) if epoch else None, EndReason(reason))
    except ValueError as exc:
        raise OutboxFormatError(f"bad outbox entry {text!r}: {exc}") from None
    raise OutboxFormatError(f"bad outbox entry {text!r}")
