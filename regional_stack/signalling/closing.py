"""WebSocket close codes and reasons the agent uses, chosen for Epic's frontend library.

Epic's `WebRtcPlayerController` (lib-pixelstreamingfrontend-ue5.5 1.3.0)
reconnects after every close *except* code 1001 (`CODE_GOING_AWAY`), and shows
`event.reason` as the disconnect message. So:

- a session the server ended is closed with 1001 and `session ended: <reason>`:
  the library stops retrying at once and shows the reason (its own
  "click to reconnect" stays, but nothing reconnects on its own);
- a player the streamer disconnects (`disconnectPlayer`) is closed with 1011 and
  the streamer's reason, as Epic's signalling server does; the library
  reconnects, and the agent lets it back within the reconnect window;
- a renderer that dies under a session closes its player with 1011 and
  `renderer restarted: session re-placed`: not an end (the control plane
  re-places the session; the page follows it to the new stream);
- a streamer connection that drops while the renderer process lives is closed
  with 1012, as Epic's server closes its players' sockets then; the library
  reconnects and finds the streamer when it is back.

Pure; docs/pixel-streaming.md has the table.
"""

from __future__ import annotations

from dataclasses import dataclass

SESSION_ENDED = 1001
STREAMER_DISCONNECTED_PLAYER = 1011
STREAMER_GONE = 1012
STREAMER_REFUSED = 4001  # towards a second streamer; players never see it
SESSION_ENDED_PREFIX = "session ended: "
# The renderer died under the session: not an end, the control plane re-places
# the session and the player follows it to its new stream (docs/agent.md).
SESSION_REPLACED = "renderer restarted: session re-placed"
# RFC 6455: a close reason is at most 123 bytes of UTF-8.
MAX_REASON_BYTES = 123


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str

    @property
    def final(self) -> bool:
        """Whether Epic's library gives up after this close (no automatic reconnect)."""
        return self.code == SESSION_ENDED

    def reason_bytes(self) -> bytes:
        raw = self.reason.encode()
        if len(raw) <= MAX_REASON_BYTES:
            return raw
        return raw[:MAX_REASON_BYTES].decode(errors="ignore").encode()


def session_ended(reason: str) -> Close:
    """The server ended the session (`reason`: an end reason such as `idle`)."""
    return Close(SESSION_ENDED, SESSION_ENDED_PREFIX + reason)


def disconnected_by_streamer(reason: str) -> Close:
    return Close(STREAMER_DISCONNECTED_PLAYER, reason or "disconnected by streamer")


def session_replaced() -> Close:
    """Retryable for Epic's library; a page that follows the session's events
    connects to the re-placed session's new stream instead."""
    return Close(STREAMER_DISCONNECTED_PLAYER, SESSION_REPLACED)


def streamer_gone() -> Close:
    return Close(STREAMER_GONE, "streamer disconnected")


def ended_reason(close_reason: str) -> str | None:
    """The end reason a final close carries, or None for any other close."""
    if close_reason.startswith(SESSION_ENDED_PREFIX):
        return close_reason[len(SESSION_ENDED_PREFIX) :]
    return None
