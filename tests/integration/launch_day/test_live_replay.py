"""A short live launch-day replay (`streamfleet simulate launch-day --live`) on a real
stack: 4 regions, 2 control-plane replicas behind the balancer, pool managers on
moto groups, a simulated fleet; 9 minutes of the launch ramp compressed six-fold,
tens of users, one control-plane replica killed mid-ramp. The pool is static and
smaller than the ramp's demand (4 instances a region), so users queue. Players open
their streams through the region's router to each simulated instance's address."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_live_replay_with_a_replica_killed_books_once_in_order_and_loses_nothing(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "streamfleet.cli", "simulate", "launch-day", "--live",
         "--peak", "40", "--mean-session-s", "120", "--from-hour", "10.05", "--to-hour", "10.2",
         "--speed", "6", "--replicas", "2", "--faults", "replica_kill9", "--policy", "static", "--static", "4",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=280, cwd=ROOT, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    line = json.loads(run.stdout.strip().splitlines()[-1])
    # Really exercised: tens of users came and were served, the fault happened.
    assert line["users_arrived"] >= 20, line
    assert line["users_served"] >= 20, line
    # A pool smaller than the ramp's demand: users queue (and their order is judged).
    assert line["users_queued"] >= 5, line
    assert [f["name"] for f in line["faults"]] == ["replica_kill9"], line
    # Players opened their streams through the routers' signalling.
    assert line["connect"] == "router", line
    assert line["signalling_connect_ms_p50_p99"] is not None, line
    assert line["fault_errors"] == [], line
    assert line["double_bookings"] == 0, line
    assert line["queue_order_violations"], line  # every region was judged
    assert line["queue_order_violations_total"] == 0, line
    assert line["sessions_lost"] == 0, line["lost_reasons"]
    assert line["users_refused"] == 0, line
    # Every instance came back to the pool: none reserved, streaming or recycling.
    assert line["instances_not_returned"] == {}, line
    assert Path(line["png"]).stat().st_size > 10_000
    assert line["model"]["users_arrived"] > 0  # the model's figures, side by side
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(tmp_path) in _argv(p)]
    assert not left, [_argv(p) for p in left]


def _argv(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
