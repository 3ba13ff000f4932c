"""The chaos run's counting rules (bench/chaos_report.py): pure."""

from __future__ import annotations

import base64

from bench.chaos_report import (
    FaultTally,
    lost_reason,
    report,
    sessions_on_two_instances,
    shared_hosts,
    stream_host,
    until_normal,
    well_formed,
)


def live(instance: str, ip: str, state: str = "connected") -> dict[str, object]:
    payload = base64.urlsafe_b64encode(f"s|{instance}|{ip}|3|99".encode()).decode().rstrip("=")
    return {
        "state": state,
        "stream": {"url": f"http://127.0.0.1:9/i/{ip}/", "token": f"v1.k1.{payload}.sig"},
    }


def test_lost_is_a_session_its_user_still_holds_gone_or_ended_by_someone_else() -> None:
    assert lost_reason(404, {}, ended_by_user=False) == "http_404"
    assert lost_reason(200, {"state": "ended", "end_reason": "instance_lost"}, False) == (
        "ended:instance_lost"
    )
    assert lost_reason(200, {"state": "ended", "end_reason": "client_ended"}, False) is None
    assert lost_reason(404, {}, ended_by_user=True) is None
    assert lost_reason(503, {}, ended_by_user=False) is None  # no answer is not a loss
    assert lost_reason(200, {"state": "connected"}, False) is None


def test_double_booking_is_two_live_sessions_on_one_instance_not_one_reused_ip() -> None:
    views = {
        "a": live("i-1", "127.11.1.4"),
        "b": live("i-1", "127.11.1.4", "assigned"),
        "c": live("i-2", "127.11.1.5"),
        "d": live("i-3", "127.11.1.5"),  # a replacement reusing i-2's address
        "e": {"state": "ended"},
    }
    assert stream_host(views["a"]) == "i-1"
    assert shared_hosts(views) == [frozenset({"a", "b"})]
    rows = [
        {"instance_id": "i-1", "state": "streaming", "session_id": "x"},
        {"instance_id": "i-2", "state": "reserved", "session_id": "x"},
        {"instance_id": "i-3", "state": "ready", "session_id": None},
    ]
    assert sessions_on_two_instances(rows) == ["x"]


def test_report_is_well_formed_and_says_what_was_skipped() -> None:
    tally = FaultTally("agent_kill9", lost={"s1": "http_404"}, refused=["create:503"] * 2)
    tally.seconds_until_normal = 1.26
    faults = {"agent_kill9": tally.result({}), "sentinel_failover": {"skipped": "not available"}}
    line = report(faults, {"regions": ["eu-central-1"]}, 12.0)
    assert well_formed(line) == []
    assert line["faults"]["agent_kill9"]["sessions_lost"] == 1
    assert line["faults"]["agent_kill9"]["users_refused"] == 2
    assert line["faults"]["agent_kill9"]["seconds_until_normal"] == 1.3
    assert line["totals"]["sessions_lost"] == 1 and not line["all_zero"]
    broken = {**line, "faults": {"x": {"sessions_lost": -1}, "y": {"skipped": ""}}}
    assert well_formed(broken)[0].startswith("x: ")
    assert "y: skipped without a reason" in well_formed(broken)


def test_normal_means_no_refusal_after_it_and_two_probes_served() -> None:
    assert until_normal(10.0, bad_at=[9.0], good_at=[10.5, 11.0]) == 0.0
    assert until_normal(10.0, bad_at=[12.0, 14.5], good_at=[11.0, 13.0, 15.0, 16.0]) == 4.5
    assert until_normal(10.0, bad_at=[14.5], good_at=[11.0, 13.0, 15.0]) is None
    assert until_normal(10.0, bad_at=[], good_at=[]) is None
