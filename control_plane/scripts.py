"""Load the Lua scripts once and call them with explicit keys and args.

Each script file is a package resource; the shared preludes and the
transition table generated from streamfleet/lifecycle.py are prepended, so
the state machine is written once, in Python, and enforced in Redis.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Protocol

from streamfleet.lifecycle import INSTANCE_TRANSITIONS

REGION_SCRIPTS = (
    "region_register",
    "region_heartbeat",
    "region_reserve",
    "region_release",
    "region_client",
    "region_reap",
    "region_drain",
    "region_terminate",
    "region_queue",
    "region_dispatch",
)
SESSION_SCRIPTS = (
    "session_create",
    "session_bind",
    "session_connected",
    "session_enqueue",
    "session_end",
)


class ScriptRunner(Protocol):
    sha: str

    async def __call__(self, keys: list[str], args: list[str | int]) -> Any: ...


def transition_table_lua() -> str:
    rows = []
    for state, nexts in INSTANCE_TRANSITIONS.items():
        inner = ", ".join(f"{n.value} = true" for n in sorted(nexts))
        rows.append(f"  {state.value} = {{{inner}}},")
    return "local INSTANCE_NEXT = {\n" + "\n".join(rows) + "\n}\n"


def _read(name: str) -> str:
    return resources.files("control_plane.lua").joinpath(f"{name}.lua").read_text()


def script_source(name: str) -> str:
    """The full text Redis runs for `name`: preludes + the script itself."""
    prelude = _read("_region") if name.startswith("region_") else _read("_session")
    return transition_table_lua() + _read("_common") + prelude + _read(name)


class Scripts:
    """The registered scripts of one Redis client, by name."""

    def __init__(self, client: Any) -> None:
        self._by_name: dict[str, ScriptRunner] = {
            name: client.register_script(script_source(name))
            for name in REGION_SCRIPTS + SESSION_SCRIPTS
        }

    def __getitem__(self, name: str) -> ScriptRunner:
        return self._by_name[name]

    def sha(self, name: str) -> str:
        return self._by_name[name].sha
