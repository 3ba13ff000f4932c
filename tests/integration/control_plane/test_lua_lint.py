"""The Redis-script lint of the gate (scripts/lint_redis_lua.py) lints what Redis
runs and points each warning at the file and line a developer must edit."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from control_plane.scripts import REGION_SCRIPTS, SESSION_SCRIPTS

REPO = Path(__file__).resolve().parents[3]
TOOL = REPO / "scripts" / "lint_redis_lua.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_redis_lua", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", REGION_SCRIPTS + SESSION_SCRIPTS)
def test_assembled_lines_map_back_to_the_script_file(name: str, tmp_path: Path) -> None:
    tool = load_tool()
    out = tmp_path / f"{name}.lua"
    offset = tool.assemble(name, out)
    assembled = out.read_text().splitlines()
    own = (tool.LUA_DIR / f"{name}.lua").read_text().splitlines()
    assert assembled[offset:] == own
    assert assembled[0] == "-- luacheck: push ignore 211"


def test_a_planted_fault_is_reported_at_its_own_line(tmp_path: Path) -> None:
    # The same luacheck configuration the gate uses, on an assembled script with
    # one undefined global read on the first line of the script's own text.
    tool = load_tool()
    out = tmp_path / "region_drain.lua"
    offset = tool.assemble("region_drain", out)
    lines = out.read_text().splitlines(keepends=True)
    lines.insert(offset, "local _ = not_defined_anywhere\n")
    out.write_text("".join(lines))
    done = subprocess.run(
        ["luacheck", "--no-color", "--formatter", "plain", "--config", str(tool.CONFIG), out.name],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = [m for m in done.stdout.splitlines() if "not_defined_anywhere" in m]
    assert len(found) == 1, done.stdout
    assert int(found[0].split(":")[1]) - offset == 1


def test_the_tool_reports_in_file_line_form() -> None:
    done = subprocess.run(
        [sys.executable, str(TOOL), "--report-only"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    *warnings, summary = done.stdout.splitlines()
    assert re.fullmatch(r"luacheck \(Redis scripts\): \d+ warning\(s\) \(report only\)", summary)
    for w in warnings:
        assert re.match(r"control_plane/lua/\w+\.lua(:\d+| \(prelude, line \d+\)):\d+: ", w), w
