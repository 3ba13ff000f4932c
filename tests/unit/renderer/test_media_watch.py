"""The renderer's media watch: when receiver reports stop, media has stalled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from regional_stack.renderer.media_watch import MediaWatch, newest_report, packets_sent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def report(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_nothing_is_judged_before_the_first_packet() -> None:
    watch = MediaWatch(stall_s=4)
    assert [watch.observe(None, 0, t) for t in (0.0, 10.0, 100.0)] == [False] * 3


def test_no_report_within_stall_after_the_first_packet_is_a_stall() -> None:
    """ICE and DTLS came up, we send, and the player never reports: media never arrived."""
    watch = MediaWatch(stall_s=4)
    assert not watch.observe(None, 5, 10.0)
    assert not watch.observe(None, 20, 11.5)
    assert not watch.observe(None, 40, 13.0)
    assert not watch.observe(None, 50, 13.9)
    assert watch.observe(None, 80, 14.0)


def test_fresh_reports_keep_it_alive_and_their_stop_is_a_stall() -> None:
    watch = MediaWatch(stall_s=4)
    for i in range(20):  # a report about every second for 20 s
        assert not watch.observe(report(i), 100 + i, float(i))
    # The same report seen again and again: no new one arrived since t=19.
    assert not watch.observe(report(19), 200, 20.5)
    assert not watch.observe(report(19), 200, 22.0)
    assert not watch.observe(report(19), 200, 22.9)
    assert watch.observe(report(19), 200, 23.0)


def test_a_report_after_a_gap_below_the_threshold_resets_the_clock() -> None:
    watch = MediaWatch(stall_s=4)
    watch.observe(report(0), 1, 0.0)
    assert not watch.observe(report(0), 1, 1.8)
    assert not watch.observe(report(0), 1, 3.5)
    assert not watch.observe(report(3.6), 1, 3.6)
    assert not watch.observe(report(3.6), 1, 5.5)
    assert not watch.observe(report(3.6), 1, 7.5)
    assert watch.observe(report(3.6), 1, 7.7)


def test_a_starved_check_loop_is_no_evidence() -> None:
    """The renderer's own loop stalled (a loaded machine): the gap is not judged,
    the clock restarts; a real stall is still found after it."""
    watch = MediaWatch(stall_s=4)
    watch.observe(report(0), 1, 0.0)
    assert not watch.observe(report(0), 1, 9.0)  # 9 s between two checks
    assert not watch.observe(report(0), 1, 11.0)
    assert not watch.observe(report(0), 1, 12.5)
    assert watch.observe(report(0), 1, 13.0)


def test_reason_names_the_threshold() -> None:
    assert MediaWatch(stall_s=4).reason() == "media stalled: no receiver report for 4 s"


@dataclass
class Stat:
    type: str
    timestamp: datetime
    packetsSent: int = 0  # aiortc's (WebRTC's) field name


def test_reads_aiortc_stats_reports() -> None:
    stats: dict[str, object] = {
        "outbound-rtp_1": Stat("outbound-rtp", T0, packetsSent=42),
        "transport_1": Stat("transport", T0),
        "remote-inbound-rtp_1": Stat("remote-inbound-rtp", report(3)),
    }
    assert newest_report(stats) == report(3)
    assert packets_sent(stats) == 42
    assert newest_report({"outbound-rtp_1": Stat("outbound-rtp", T0)}) is None
    assert packets_sent({}) == 0
