"""Round trips of the script-reply decoders and the outbox codec.

Each `*_reply` helper below builds the positional array a script returns (as
its header in control_plane/lua documents it, with bytes as redis-py gives
them); the decoder must give back exactly the values that went in. The real
scripts' replies are decoded against real Redis in tests/integration/broker.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.broker import outbox, replies
from control_plane.broker.outbox import BindEntry, EndEntry, RebuildEntry, RequeueEntry
from streamfleet.lifecycle import EndReason, InstanceState, SessionState

ident = st.from_regex(r"[A-Za-z0-9._-]{1,24}", fullmatch=True)
octet = st.integers(0, 255)
ips = st.tuples(octet, octet, octet, octet).map(lambda t: ".".join(map(str, t)))
ms = st.integers(0, 2**48)
epochs = st.integers(1, 2**40)
binds = st.builds(BindEntry, ident, ident, epochs, ips, ms)
ends = st.builds(
    EndEntry, ident, st.none() | ident, st.none() | epochs, st.sampled_from(list(EndReason))
)
rebuilds = st.builds(
    RebuildEntry, ident, ident, epochs, ips,
    st.sampled_from([SessionState.ASSIGNED, SessionState.CONNECTED]), st.none() | ms,
)  # fmt: skip
requeues = st.builds(RequeueEntry, ident, ident, epochs)
entries = binds | ends | rebuilds | requeues


def b(value: object) -> bytes:
    return str(value).encode()


@given(entries)
def test_outbox_round_trip(entry: outbox.OutboxEntry) -> None:
    if isinstance(entry, EndEntry) and (entry.instance_id is None) != (entry.epoch is None):
        entry = EndEntry(entry.session_id, None, None, entry.reason)
    assert outbox.decode(outbox.encode(entry)) == entry


@pytest.mark.parametrize(
    "text",
    ["", "bind", "bind|s|i|x|1.2.3.4|5", "end|s|i|1|no_such_reason", "end|s|i|1", "other|a|b"],
)
def test_outbox_refuses_malformed(text: str) -> None:
    with pytest.raises(outbox.OutboxFormatError):
        outbox.decode(text)


def test_lua_shaped_rebuild_entries_decode() -> None:
    """The exact strings _common.lua's outbox_rebuild writes (no claim once connected)."""
    assert outbox.decode("rebuild|s1|i-1|7|127.11.0.1|connected|") == RebuildEntry(
        "s1", "i-1", 7, "127.11.0.1", SessionState.CONNECTED, None
    )
    assert outbox.decode("rebuild|s1|i-1|7|127.11.0.1|assigned|1700000090000") == RebuildEntry(
        "s1", "i-1", 7, "127.11.0.1", SessionState.ASSIGNED, 1700000090000
    )


def test_rebuild_reply() -> None:
    assert replies.rebuild([1, b"", b"", b"", b""]) == replies.Rebuilt(True)
    assert replies.rebuild([1, b"queued", b"", b"", b""]) == replies.Rebuilt(
        True, had=SessionState.QUEUED
    )
    assert replies.rebuild([1, b"assigned", b"eu-west-1", b"i-1", b"7"]) == replies.Rebuilt(
        True, had=SessionState.ASSIGNED, displaced=("eu-west-1", "i-1", 7)
    )
    assert replies.rebuild([0, b"client_busy"]) == replies.Rebuilt(False, "client_busy")


def test_outbox_refuses_a_separator_in_a_field() -> None:
    with pytest.raises(outbox.OutboxFormatError):
        outbox.encode(EndEntry("s|x", None, None, EndReason.IDLE))


def test_lua_shaped_entries_decode() -> None:
    """The exact strings _common.lua's outbox_bind/outbox_end write."""
    assert outbox.decode("bind|s1|i-1|7|127.11.0.1|1700000090000") == BindEntry(
        "s1", "i-1", 7, "127.11.0.1", 1700000090000
    )
    assert outbox.decode("end|s1|||queue_timeout") == EndEntry(
        "s1", None, None, EndReason.QUEUE_TIMEOUT
    )


@given(st.sampled_from(list(InstanceState)), st.none() | binds | rebuilds | requeues)
def test_registered(
    state: InstanceState, bind: BindEntry | RebuildEntry | RequeueEntry | None
) -> None:
    raw = [b(state.value), outbox.encode(bind).encode() if bind else b""]
    assert replies.registered(raw) == replies.Registered(state, bind)


@given(
    st.sampled_from(list(InstanceState)), st.none() | ident, st.integers(0, 2**40),
    st.none() | ms, st.lists(st.sampled_from(["drain", "end_session"]), max_size=2, unique=True),
    st.none() | binds | rebuilds,
)  # fmt: skip
def test_heartbeat(
    state: InstanceState, sid: str | None, epoch: int, claim: int | None, commands: list[str],
    bind: BindEntry | RebuildEntry | None,
) -> None:  # fmt: skip
    raw = [
        b(state.value), b(sid or ""), epoch, b(claim if claim is not None else ""),
        b(",".join(commands)), outbox.encode(bind).encode() if bind else b"",
    ]  # fmt: skip
    assert replies.heartbeat(raw) == replies.Heartbeat(
        state, sid, epoch, claim, tuple(commands), bind
    )


def test_heartbeat_unknown() -> None:
    assert replies.heartbeat([b"unknown"]) is None


@given(ident, ips, epochs, ms)
def test_reserve(iid: str, ip: str, epoch: int, deadline: int) -> None:
    assert replies.reserve([1, b(iid), b(ip), epoch, deadline]) == replies.Reserved(
        iid, ip, epoch, deadline
    )
    assert replies.reserve([0, b"queue_ahead"]) == "queue_ahead"


@given(
    st.sampled_from(list(InstanceState)), st.none() | binds, st.none() | ends,
    st.none() | requeues,
)  # fmt: skip
def test_changed(
    state: InstanceState, bind: BindEntry | None, end: EndEntry | None,
    requeue: RequeueEntry | None,
) -> None:  # fmt: skip
    def enc(e: outbox.OutboxEntry | None) -> bytes:
        return outbox.encode(e).encode() if e else b""

    assert replies.client([1, b(state.value)]) == replies.Changed(True, state.value)
    assert replies.release([1, b(state.value), enc(bind)]) == replies.Changed(
        True, state.value, bind
    )
    assert replies.release([0, b"stale"]) == replies.Changed(False, "stale")
    if end is not None and (end.instance_id is None) != (end.epoch is None):
        end = EndEntry(end.session_id, None, None, end.reason)
    assert replies.drain([1, b(state.value), enc(end)]) == replies.Changed(True, state.value, end)
    # A serving instance the cloud took away re-places its session.
    assert replies.terminate([1, enc(requeue)]) == replies.Changed(True, "terminated", requeue)
    assert replies.terminate([0, b"unknown"]) == replies.Changed(False, "unknown")
    assert replies.replace([1, b(state.value), enc(requeue)]) == replies.Changed(
        True, state.value, requeue
    )
    assert replies.replace([0, b"stale"]) == replies.Changed(False, "stale")


@given(st.integers(-(2**52), 2**48), ms, st.integers(1, 10), st.booleans())
def test_requeue(ticket: int, deadline: int, replaced: int, fresh: bool) -> None:
    raw = [1, b(ticket), deadline, replaced, int(fresh)]
    assert replies.requeue(raw) == replies.Requeued(True, "", ticket, deadline, replaced, fresh)
    assert replies.requeue([0, b"limit"]) == replies.Requeued(False, "limit")


def test_an_entry_of_the_wrong_kind_is_refused() -> None:
    end = outbox.encode(EndEntry("s", "i", 1, EndReason.DRAINED)).encode()
    with pytest.raises(outbox.OutboxFormatError):
        replies.registered([b"ready", end])


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_queue(position: int, ready: int) -> None:
    assert replies.queue([1, position, ready]) == replies.Queued(position, ready)


@given(ident, ms)
def test_create(sid: str, created: int) -> None:
    assert replies.create([1, b(sid), created]) == replies.Created(True, sid, created)
    assert replies.create([0, b(sid)]) == replies.Created(False, sid, None)


@given(st.sampled_from(["queued", "assigned", "ended", "unknown", "stale_epoch"]))
def test_outcome(why: str) -> None:
    assert replies.outcome([1]) == replies.Outcome(True)
    assert replies.outcome([0, b(why)]) == replies.Outcome(False, why)


@given(st.integers(1, 2**40), ms)
def test_enqueue(ticket: int, deadline: int) -> None:
    assert replies.enqueue([1, b(ticket), b(deadline)]) == replies.Enqueued(True, ticket, deadline)
    assert replies.enqueue([0, b"assigned"]) == replies.Enqueued(False, state="assigned")


@given(
    st.none() | ident, st.none() | ident, st.none() | epochs,
    st.lists(ident, max_size=4), st.none() | st.sampled_from(list(EndReason)),
)  # fmt: skip
def test_end(
    region: str | None, iid: str | None, epoch: int | None, queues: list[str],
    prior: EndReason | None,
) -> None:  # fmt: skip
    raw = [1, b(region or ""), b(iid or ""), b("" if epoch is None else epoch), b(",".join(queues))]
    assert replies.end(raw) == replies.Ended(region, iid, epoch, tuple(queues))
    not_ended = replies.end([0, b"ended", b(prior.value if prior else "")])
    assert not_ended == replies.NotEnded("ended", prior)


@given(ident, ips, epochs, ms, st.integers(0, 60_000))
def test_place(iid: str, ip: str, epoch: int, deadline: int, reset: int) -> None:
    got = replies.place([1, b(iid), b(ip), epoch, deadline, b"1700000000000"])
    assert got == replies.Reserved(iid, ip, epoch, deadline)
    limited = replies.place([0, b"rate_limited", reset])
    assert limited == replies.NotPlaced("rate_limited", reset) and limited.rate_limited
    full = replies.place([0, b"no_capacity", b"1700000000000"])
    assert full == replies.NotPlaced("no_capacity") and not full.rate_limited


def test_entries_skip_empty() -> None:
    bind = BindEntry("s", "i", 1, "127.0.0.1", 5)
    assert replies.entries([outbox.encode(bind).encode(), b""]) == [bind]


@given(st.dictionaries(st.sampled_from([s.value for s in InstanceState]), st.integers(0, 10**6)))
def test_counts(counts: dict[str, int]) -> None:
    raw = [x for state, n in counts.items() for x in (b(state), n)]
    assert replies.counts(raw) == {s: n for s, n in counts.items() if n}
