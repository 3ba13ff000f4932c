"""The lifecycle tables are enforced in Redis, where state changes.

Every instance and session state change in the Lua scripts goes through one
checked function (`set_state` in _region.lua, `session_move` in _session.lua,
both calling `check_move` in _common.lua with the tables generated from
streamfleet/lifecycle.py). These tests run that very function, with the very
preludes the scripts get, against a real Redis for every (from, to) pair: a
forbidden move is refused with a typed error naming the current state and
changes nothing; an allowed one applies. A source check proves no script
writes a state any other way, and the public broker refuses the moves the
table forbids.
"""

from __future__ import annotations

import itertools
import re
from importlib import resources
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis import exceptions as rx

from control_plane import keys
from control_plane.broker import Broker
from control_plane.clock import ManualClock
from control_plane.domain import TransitionRefused
from control_plane.scripts import transition_table_lua
from streamfleet.lifecycle import (
    INSTANCE_INITIAL,
    INSTANCE_TRANSITIONS,
    SESSION_INITIAL,
    SESSION_TRANSITIONS,
    InstanceState,
    SessionState,
)

EU = "eu-central-1"
LUA = resources.files("control_plane.lua")


def _lua(name: str) -> str:
    return LUA.joinpath(f"{name}.lua").read_text()


INSTANCE_MOVE = (
    transition_table_lua() + _lua("_common") + _lua("_region")
    + "set_state(ARGV[1], ARGV[2], tonumber(ARGV[3]))\nreturn redis.call('HGET', K_STATE, ARGV[1])"
)  # fmt: skip
SESSION_MOVE = (
    transition_table_lua() + _lua("_common") + _lua("_session")
    + "session_move(ARGV[1], ARGV[2], {})\nreturn redis.call('HGET', K_SESSION, 'state')"
)  # fmt: skip

INSTANCE_PAIRS = [
    (a, b) for a, b in itertools.product([None, *InstanceState], InstanceState) if a != b
]
SESSION_PAIRS = [
    (a, b) for a, b in itertools.product([None, *SessionState], SessionState) if a != b
]


def instance_allowed(a: InstanceState | None, b: InstanceState) -> bool:
    return b in INSTANCE_INITIAL if a is None else b in INSTANCE_TRANSITIONS[a]


def session_allowed(a: SessionState | None, b: SessionState) -> bool:
    return b in SESSION_INITIAL if a is None else b in SESSION_TRANSITIONS[a]


async def _dump(client: Any) -> dict[bytes, Any]:
    out = {}
    for key in await client.keys("*"):
        kind = (await client.type(key)).decode()
        if kind == "hash":
            out[key] = await client.hgetall(key)
        elif kind == "zset":
            out[key] = await client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = kind
    return out


@pytest.fixture
async def client(redis_server: Any) -> Any:
    c = aioredis.Redis.from_url(redis_server.url)
    await c.flushall()
    yield c
    await c.aclose()


@pytest.mark.parametrize(("current", "wanted"), INSTANCE_PAIRS, ids=str)
async def test_instance_move_checked(
    client: Any, current: InstanceState | None, wanted: InstanceState
) -> None:
    script = client.register_script(INSTANCE_MOVE)
    region_keys = keys.region_keys(EU)
    if current is not None:
        await client.hset(region_keys[0], "i-1", current.value)
    before = await _dump(client)
    if instance_allowed(current, wanted):
        assert (await script(region_keys, ["i-1", wanted.value, 1000])).decode() == wanted.value
        return
    with pytest.raises(rx.ResponseError) as refused:
        await script(region_keys, ["i-1", wanted.value, 1000])
    current_name = current.value if current else "new"
    assert str(refused.value).startswith(f"TRANSITION instance i-1 {current_name} {wanted.value}")
    assert await _dump(client) == before  # nothing written


@pytest.mark.parametrize(("current", "wanted"), SESSION_PAIRS, ids=str)
async def test_session_move_checked(
    client: Any, current: SessionState | None, wanted: SessionState
) -> None:
    script = client.register_script(SESSION_MOVE)
    sid = keys.new_session_id("client-1")
    session_keys = keys.session_keys(sid)
    if current is not None:
        await client.hset(session_keys[1], "state", current.value)
    before = await _dump(client)
    if session_allowed(current, wanted):
        assert (await script(session_keys, [sid, wanted.value])).decode() == wanted.value
        return
    with pytest.raises(rx.ResponseError) as refused:
        await script(session_keys, [sid, wanted.value])
    current_name = current.value if current else "new"
    assert str(refused.value).startswith(f"TRANSITION session {sid} {current_name} {wanted.value}")
    assert await _dump(client) == before


def test_no_script_writes_a_state_around_the_check() -> None:
    """The only writes of an instance state or a session state are in the checked functions."""
    writers = {
        "K_STATE": re.compile(r"redis\.call\('HSET', K_STATE"),
        "session state": re.compile(r"redis\.call\('HSET', K_SESSION, 'state'"),
    }
    found: dict[str, list[str]] = {name: [] for name in writers}
    for entry in LUA.iterdir():
        if entry.name.endswith(".lua"):
            for name, pattern in writers.items():
                if pattern.search(entry.read_text()):
                    found[name].append(entry.name)
    assert found == {"K_STATE": ["_region.lua"], "session state": ["_session.lua"]}
    region = _lua("_region")
    body = region[region.index("local function set_state") :]
    body = body[: body.index("\nend\n")]
    assert body.index("check_move(") < body.index("redis.call('HSET', K_STATE")


async def test_broker_refuses_forbidden_moves(client: Any) -> None:
    """Through the public broker: a terminated instance never comes back, and a
    refusal names the current state and leaves the region unchanged."""
    broker = Broker(client, [EU], clock=ManualClock())
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    await broker.drain(EU, "i-1")
    await broker.terminate(EU, "i-1")
    before = await _dump(client)
    with pytest.raises(TransitionRefused) as refused:
        await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    assert (refused.value.current, refused.value.wanted) == ("terminated", "booting")
    assert await _dump(client) == before
    assert (await broker.instance_states(EU))["i-1"] is InstanceState.TERMINATED


async def test_lua_outbox_entries_re_encode_exactly(client: Any) -> None:
    """settle() strikes an entry off by re-encoding it: the codec must give back
    the very string Lua wrote, for bind and end entries alike."""
    from control_plane.broker import outbox

    clock = ManualClock()
    broker = Broker(client, [EU], clock=clock)
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    first = await broker.create_session("client-a", [EU])
    waiting = await broker.create_session("client-b", [EU])
    assert first.assigned and not waiting.assigned
    # The region side alone (the caller "crashed" before settling): an end entry
    # for client-a's session, then a bind entry handing i-1 to client-b.
    await broker.store.drain(EU, "i-1", force=True)
    await broker.store.register(EU, "i-2", "127.11.0.2", "{}", ready=True)
    raw = [x.decode() for x in await client.zrange(keys.region_key(EU, "outbox"), 0, -1)]
    assert {type(outbox.decode(x)) for x in raw} == {outbox.EndEntry, outbox.BindEntry}
    assert all(outbox.encode(outbox.decode(x)) == x for x in raw)


async def test_lua_requeue_entries_re_encode_exactly(client: Any) -> None:
    """The re-placement entry (a renderer crash; a restarted agent) round-trips too."""
    from control_plane.broker import outbox

    broker = Broker(client, [EU], clock=ManualClock())
    await broker.register_instance(EU, "i-1", "127.11.0.1", ready=True)
    await broker.register_instance(EU, "i-2", "127.11.0.2", ready=True)
    a = (await broker.create_session("client-a", [EU])).session
    b = (await broker.create_session("client-b", [EU])).session
    assert a.instance_id and a.epoch is not None and b.instance_id
    await broker.store.replace(EU, a.instance_id, a.session_id, a.epoch)  # the region side only
    await broker.store.register(EU, b.instance_id, "127.11.0.2", "{}", ready=False)
    raw = [x.decode() for x in await client.zrange(keys.region_key(EU, "outbox"), 0, -1)]
    assert [type(outbox.decode(x)) for x in raw] == [outbox.RequeueEntry] * 2
    assert all(outbox.encode(outbox.decode(x)) == x for x in raw)
    # Until settled, the sessions still name their old instances; the reaper's
    # pass after the outbox grace finishes both re-placements.
    assert (await broker.get_session(a.session_id)).state is SessionState.ASSIGNED
    await broker.settlement.settle(EU, [outbox.decode(x) for x in raw])
    for s in (a, b):
        assert (await broker.get_session(s.session_id)).replaced == 1
