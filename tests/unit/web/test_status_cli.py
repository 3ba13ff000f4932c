"""`streamfleet status` table rendering (pure; tests/integration/control_plane/test_contract.py
runs it against a real control plane, the e2e tests against a real stack)."""

from __future__ import annotations

from simulators.status_cli import RegionStatus, age, render
from streamfleet.lifecycle import InstanceState
from streamfleet.wire import InstancesView, RegionPool

SID = "0123456789abcdef0123456789abcdef-0123456789abcdef"
COUNTS = {state.value: 0 for state in InstanceState}


def status(pool: dict[str, object], rows: list[dict[str, object]]) -> RegionStatus:
    return RegionStatus(
        RegionPool.model_validate(pool), InstancesView.model_validate({"instances": rows}).instances
    )


POOLS = {
    "eu-central-1": status(
        {"instances": {**COUNTS, "ready": 2, "streaming": 1}, "queue_depth": 5, "queued_here": 3, "live_sessions": 1,
         "constrained": True, "constraint_reason": "InsufficientInstanceCapacity",
         "arrivals_per_min": [0, 1]},
        [
            {"instance_id": "i-a", "state": "streaming", "private_ip": "127.11.0.1", "instance_type": "",
             "session_id": SID, "state_age_s": 125.0, "heartbeat_age_s": 0.4, "draining": True},
            {"instance_id": "i-b", "state": "ready", "private_ip": "127.11.0.2", "instance_type": "",
             "session_id": None, "state_age_s": 4.0, "heartbeat_age_s": None, "draining": False},
        ],
    ),
    "us-west-2": status(
        {"instances": COUNTS, "queue_depth": 2, "queued_here": 0, "live_sessions": 0, "constrained": False,
         "arrivals_per_min": []},
        [],
    ),
}  # fmt: skip


def test_summary_row_per_region_with_counts_queue_and_constraint() -> None:
    lines = render(POOLS).splitlines()
    header = lines[0].split()
    eu = lines[2].split()
    assert eu[0] == "eu-central-1"
    assert eu[header.index("ready")] == "2"
    assert eu[header.index("streaming")] == "1"
    assert eu[header.index("queue")] == "3"  # queued_here: each waiting session once
    assert eu[header.index("sessions")] == "1"
    assert eu[-1] == "InsufficientInstanceCapacity"
    assert lines[3].split()[-1] == "no"


def test_instance_rows_show_state_session_and_ages() -> None:
    text = render(POOLS)
    row = next(line for line in text.splitlines() if "i-a" in line)
    assert "streaming (draining)" in row
    assert SID in row and "2 min" in row
    assert next(line for line in text.splitlines() if "i-b" in line).split()[-3:] == ["4", "s", "-"]
    assert "us-west-2:\n  no instances" in text


def test_age_units() -> None:
    assert [age(None), age(5), age(600), age(7200)] == ["-", "5 s", "10 min", "2.0 h"]
