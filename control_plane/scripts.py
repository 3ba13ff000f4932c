"""Load the Lua scripts once and call them with explicit keys and args.

Each script file is a package resource; the shared preludes and the
transition table generated from streamfleet/lifecycle.py are prepended, so
the state machine is written once, in Python, and enforced in Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import resources
from typing import Any, Protocol, TypeVar

from streamfleet.lifecycle import (
    INSTANCE_INITIAL,
    INSTANCE_TRANSITIONS,
    SESSION_INITIAL,
    SESSION_TRANSITIONS,
)

E = TypeVar("E", bound=StrEnum)

REGION_SCRIPTS = (
    "region_register",
    "region_heartbeat",
    "region_reserve",
    "region_place",
    "region_release",
    "region_client",
    "region_reap",
    "region_drain",
    "region_terminate",
    "region_queue",
    "region_dispatch",
    "region_recount",
    "region_replace",
    "region_feed",
)
SESSION_SCRIPTS = (
    "session_create",
    "session_bind",
    "session_connected",
    "session_enqueue",
    "session_end",
    "session_rebuild",
    "session_requeue",
    "session_restore",
)
# Scripts that need no lifecycle prelude (none today: the rate limit and the
# placement journal are written inside region_place, the create's first call).
PLAIN_SCRIPTS: tuple[str, ...] = ()


class ScriptRunner(Protocol):
    sha: str

    async def __call__(self, keys: list[str], args: list[str | int]) -> Any: ...


def _lua_table(name: str, table: Mapping[E, Iterable[E]], initial: Iterable[E]) -> str:
    rows = [("new", initial), *((state.value, nexts) for state, nexts in table.items())]
    body = "\n".join(
        f"  {state} = {{{', '.join(f'{n.value} = true' for n in sorted(nexts))}}},"
        for state, nexts in rows
    )
    return f"local {name} = {{\n{body}\n}}\n"


def transition_table_lua() -> str:
    """The lifecycle tables as Lua, prepended to every script (`check_move` reads them)."""
    return _lua_table("INSTANCE_NEXT", INSTANCE_TRANSITIONS, INSTANCE_INITIAL) + _lua_table(
        "SESSION_NEXT", SESSION_TRANSITIONS, SESSION_INITIAL
    )


def _read(name: str) -> str:
    return resources.files("control_plane.lua").joinpath(f"{name}.lua").read_text()


def script_source(name: str) -> str:
    """The full text Redis runs for `name`: preludes + the script itself."""
    if name in PLAIN_SCRIPTS:
        return _read(name)
    prelude = _read("_region") if name.startswith("region_") else _read("_session")
    return transition_table_lua() + _read("_common") + prelude + _read(name)


class Scripts:
    """The registered scripts of one Redis client, by name."""

    def __init__(self, client: Any) -> None:
        self._by_name: dict[str, ScriptRunner] = {
            name: client.register_script(script_source(name))
            for name in REGION_SCRIPTS + SESSION_SCRIPTS + PLAIN_SCRIPTS
        }

    def __getitem__(self, name: str) -> ScriptRunner:
        return self._by_name[name]

    def sha(self, name: str) -> str:
        return self._by_name[name].sha
