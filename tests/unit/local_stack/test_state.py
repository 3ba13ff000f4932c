"""The state file of a running `streamfleet up`: owner-only, found while its process runs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.local_stack.state import (
    UnsafeStateDir,
    remove_state,
    running_stacks,
    state_dir,
    write_state,
)
from simulators.status_cli import StatusError, target

INFO = {"control_plane_url": "http://127.0.0.1:21000", "admin_token": "tok-a"}


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("STREAMFLEET_ADMIN_TOKEN", raising=False)
    return tmp_path


def test_the_file_is_owner_only_and_found_while_up_runs() -> None:
    path = write_state(INFO, os.getpid())
    assert path == state_dir() / "up-21000.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir().stat().st_mode) == 0o700
    assert running_stacks() == [{**INFO, "pid": os.getpid()}]
    assert target(None, None) == ("http://127.0.0.1:21000", "tok-a")
    remove_state(path)
    assert running_stacks() == []


def test_a_stack_whose_process_is_gone_is_ignored() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_state(INFO, gone.pid)
    assert running_stacks() == []
    with pytest.raises(StatusError, match="no running `streamfleet up`"):
        target(None, None)


def test_several_stacks_need_a_url_to_choose() -> None:
    write_state(INFO, os.getpid())
    write_state(
        {"control_plane_url": "http://127.0.0.1:22000", "admin_token": "tok-b"}, os.getpid()
    )
    with pytest.raises(StatusError, match="several"):
        target(None, None)
    assert target("http://127.0.0.1:22000/", None) == ("http://127.0.0.1:22000", "tok-b")
    # Given both, nothing is read.
    assert target("http://h:1", "t") == ("http://h:1", "t")


def test_a_folder_others_may_write_is_refused(runtime_dir: Path) -> None:
    folder = runtime_dir / "streamfleet"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with pytest.raises(UnsafeStateDir):
        write_state(INFO, os.getpid())
    with pytest.raises(UnsafeStateDir):
        running_stacks()
