"""Where a running `streamfleet up` says where it is, so `streamfleet status` finds it.

One JSON file per stack (`up-PORT.json`: control plane URL, admin token, PID,
work folder) in a per-user runtime folder: `$XDG_RUNTIME_DIR/streamfleet`, or
`/tmp/streamfleet-UID` where there is none. The folder is 0700 and the files 0600,
since they hold the stack's admin token; a folder that is not ours, or that others
may write to, is refused rather than used.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


class UnsafeStateDir(RuntimeError):
    pass


def state_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "streamfleet"
    return Path(tempfile.gettempdir()) / f"streamfleet-{os.getuid()}"


def _checked_dir(create: bool) -> Path | None:
    path = state_dir()
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeStateDir(f"{path} is not a folder only this user may use; remove it")
    return path


def write_state(info: dict[str, Any], pid: int) -> Path:
    """Record a ready stack; returns the file to remove when it stops."""
    folder = _checked_dir(create=True)
    assert folder is not None
    port = info["control_plane_url"].rsplit(":", 1)[1]
    path = folder / f"up-{port}.json"
    record = {**info, "pid": pid}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file may have had another mode
        json.dump(record, out)
    return path


def remove_state(path: Path) -> None:
    path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:  # kill(0) would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_stacks() -> list[dict[str, Any]]:
    """Every recorded stack whose `up` process still runs, newest first."""
    folder = _checked_dir(create=False)
    if folder is None:
        return []
    found = []
    for path in folder.glob("up-*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and _alive(int(record.get("pid", 0))):
            found.append((path.stat().st_mtime, record))
    return [r for _, r in sorted(found, key=lambda x: x[0], reverse=True)]
