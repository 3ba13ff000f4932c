"""The placement journal entry codec.

A create is several calls (create the session, reserve then bind, or take a
ticket then enqueue in each region). Before the first of them the caller
journals the placement in its first-choice region (`placing.lua`) and strikes
it off when the last one is done; an entry older than `placing_grace_s` belongs
to a caller that died (or a very slow one) and the reaper finishes the
placement exactly as a repeated create would (`Sessions.resume_placement`).
Fields are `|`-separated, regions `,`-separated; neither ever occurs in a
session id or a region name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Placing:
    session_id: str
    ranked: tuple[str, ...]  # regions to try to reserve in, in order
    waits_in: tuple[str, ...]  # regions to queue in when none has capacity


def encode(p: Placing) -> str:
    return "|".join((p.session_id, ",".join(p.ranked), ",".join(p.waits_in)))


def decode(text: str) -> Placing | None:
    """None for an entry that is not one (it is dropped, never retried)."""
    parts = text.split("|")
    if len(parts) != 3 or not parts[0]:
        return None
    ranked, waits = (tuple(r for r in part.split(",") if r) for part in parts[1:])
    return Placing(parts[0], ranked, waits)
