#!/usr/bin/env python3
"""luacheck over the control plane's Redis scripts, as Redis runs them.

The files in control_plane/lua are fragments: a script uses the keys, helpers
and transition table its preludes define (control_plane/scripts.py prepends
them). Linted one file at a time, every script would only warn about names
it did not define. So each script is linted in the text `script_source` builds,
with the preludes wrapped in `-- luacheck: push ignore 211` (a helper one
script does not use is not a fault) and every warning mapped back to the file
it comes from. Standalone scripts (no prelude) are linted as they are. The
configuration (Redis's Lua 5.1 globals) is control_plane/lua/.luacheckrc.

Usage: lint_redis_lua.py [--report-only]   (exit 1 on any warning unless report-only)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from control_plane.scripts import REGION_SCRIPTS, SESSION_SCRIPTS, script_source

LUA_DIR = Path(__file__).resolve().parents[1] / "control_plane" / "lua"
CONFIG = LUA_DIR / ".luacheckrc"
_WARNING = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<text>.*)$")


def assemble(name: str, out: Path) -> int:
    """Write the lintable text of `name`; return how many lines precede its own."""
    full = script_source(name)
    own = (LUA_DIR / f"{name}.lua").read_text()
    if not full.endswith(own):
        raise SystemExit(f"{name}: script_source no longer ends with the script's own file")
    prelude = full[: len(full) - len(own)]
    if not prelude.endswith("\n"):
        prelude += "\n"
    text = "-- luacheck: push ignore 211\n" + prelude + "-- luacheck: pop\n" + own
    out.write_text(text)
    return text.count("\n") - own.count("\n")


def main(argv: list[str]) -> int:
    report_only = "--report-only" in argv
    assembled = set(REGION_SCRIPTS + SESSION_SCRIPTS)
    warnings: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        offsets: dict[str, tuple[str, int]] = {}
        for path in sorted(LUA_DIR.glob("*.lua")):
            name = path.stem
            if name.startswith("_"):
                continue  # a prelude: linted inside every script that uses it
            target = Path(tmp) / path.name
            if name in assembled:
                offsets[path.name] = (path.name, assemble(name, target))
            else:
                target.write_text(path.read_text())
                offsets[path.name] = (path.name, 0)
        done = subprocess.run(
            ["luacheck", "--no-color", "--formatter", "plain", "--config", str(CONFIG), "."],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode > 1:  # 1 = warnings; 2+ = errors or luacheck failed
            warnings.append(done.stdout + done.stderr)
        for line in done.stdout.splitlines():
            m = _WARNING.match(line)
            if not m:
                continue
            file, offset = offsets[Path(m["file"]).name]
            n = int(m["line"])
            where = f"{file}:{n - offset}" if n > offset else f"{file} (prelude, line {n})"
            warnings.append(f"control_plane/lua/{where}:{m['col']}: {m['text']}")
    for w in warnings:
        print(w)
    count = len(warnings)
    print(f"luacheck (Redis scripts): {count} warning(s){' (report only)' if report_only else ''}")
    return 0 if report_only or count == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
