"""Each role runs with its own extra only: what a role's entry modules import at start
must come from the base dependencies or that role's extra (pyproject.toml)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

EXTRAS = {
    "server": {"redis", "geoip2", "tenacity", "boto3", "botocore", "uvloop"},
    "agent": {"aiortc", "av", "numpy", "tenacity"},
    "local": {"moto", "mmdb_writer", "netaddr"},
    "sim": {"matplotlib"},
}
ALL_EXTRAS = set().union(*EXTRAS.values())
ROLES = {
    "server": ["control_plane.cli", "control_plane.app", "regional_stack.pool.cli"],
    "agent": [
        "regional_stack.agent.cli",
        "regional_stack.agent.root",
        "regional_stack.renderer.stub",
    ],
    "": ["streamfleet.cli", "nginx_lua.cli", "nginx_lua.render", "simulators.status_cli"],
}


def imported_top_levels(modules: list[str]) -> set[str]:
    # A fresh interpreter: this test process has every extra imported already.
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("role", ROLES)
def test_a_role_imports_no_other_roles_extra(role: str) -> None:
    allowed = EXTRAS.get(role, set())
    assert imported_top_levels(ROLES[role]) & ALL_EXTRAS <= allowed
