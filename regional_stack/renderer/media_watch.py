"""Is the player still receiving our video? Pure; the stub feeds it what aiortc tells.

A media path can die while both signalling sockets stay open: coturn restarted
(its allocations are gone with it), a NAT binding dropped, a route broke. ICE
only notices through consent freshness (RFC 7675), which aioice checks every
~5 s and gives up on after 6 misses: half a minute of a frozen picture, with
the session shown `connected` all along.

What the sender *does* see within a second is the receiver's RTCP: a player
that receives our video sends receiver reports for it (aiortc's receiver every
0.5-1.5 s, browsers about once a second). aiortc's `RTCRtpSender.getStats()`
holds the newest one as the `remote-inbound-rtp` entry, stamped when it
arrived, and counts what we sent in `outbound-rtp` `packetsSent`. So: from the
first packet sent (ICE and DTLS are up then), no fresh report for `stall_s`
means the player does not get our media. Before the first packet nothing is
judged (ICE set-up has its own failure: `connectionState` "failed").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

REMOTE_INBOUND = "remote-inbound-rtp"
OUTBOUND = "outbound-rtp"
DEFAULT_STALL_S = 4.0
STALLED_REASON = "media stalled: no receiver report for {s:.0f} s"


def newest_report(stats: dict[str, object]) -> datetime | None:
    """When the newest receiver report arrived, from an aiortc RTCStatsReport."""
    for entry in stats.values():
        if getattr(entry, "type", None) == REMOTE_INBOUND:
            stamp = getattr(entry, "timestamp", None)
            return stamp if isinstance(stamp, datetime) else None
    return None


def packets_sent(stats: dict[str, object]) -> int:
    """RTP packets sent so far, from an aiortc RTCStatsReport."""
    for entry in stats.values():
        if getattr(entry, "type", None) == OUTBOUND:
            sent = getattr(entry, "packetsSent", 0)
            return sent if isinstance(sent, int) else 0
    return 0


@dataclass
class MediaWatch:
    """Feed it every check (`now` monotonic seconds); it says when media stalled."""

    stall_s: float = DEFAULT_STALL_S
    _last_stamp: datetime | None = field(default=None, init=False)
    _fresh_at: float | None = field(default=None, init=False)
    _checked_at: float | None = field(default=None, init=False)

    def observe(self, stamp: datetime | None, sent: int, now: float) -> bool:
        """True once `stall_s` passed, since the first packet was sent or the
        newest receiver report arrived, with no newer report."""
        starved = self._checked_at is not None and now - self._checked_at > self.stall_s / 2
        self._checked_at = now
        if stamp is not None and stamp != self._last_stamp:
            self._last_stamp, self._fresh_at = stamp, now
            return False
        if starved and self._fresh_at is not None:
            # Our own loop did not run for a long while (a loaded machine): the
            # reports we did not read are not evidence. Judge from here on.
            self._fresh_at = now
            return False
        if self._fresh_at is None:
            if sent > 0:
                self._fresh_at = now  # the clock starts with the first packet
            return False
        return now - self._fresh_at >= self.stall_s

    @property
    def reported(self) -> bool:
        """A receiver report has arrived: the player gets our media."""
        return self._last_stamp is not None

    def reason(self) -> str:
        return STALLED_REASON.format(s=self.stall_s)
