"""What the chaos run counts, per fault, and the shape of its JSON line. Pure.

Every figure is observed from the outside: the session API (as each user, with
the user's own secret), the control plane's ops API, the agents' /healthz and
the players' received frames.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

# Every per-fault result carries exactly these figures (ints; seconds a float or
# None when service did not become normal within the run's bound).
FIGURES = (
    "sessions_lost",
    "users_refused",
    "double_bookings",
    "stranded_sessions",
    "seconds_until_normal",
    "live_streams_cut",
)
LIVE = ("assigned", "connected")


@dataclass
class FaultTally:
    """What one fault's window saw; turned into its result line by `result`."""

    name: str
    lost: dict[str, str] = field(default_factory=dict)  # session id -> why
    refused: list[str] = field(default_factory=list)  # user -> why, one entry per user
    double: set[frozenset[str]] = field(default_factory=set)  # pairs of sessions on one instance
    seen_twice: dict[str, str] = field(default_factory=dict)  # session id -> its instance rows
    stranded: dict[str, str] = field(default_factory=dict)  # session or instance id -> why
    seconds_until_normal: float | None = None
    streams: int = 0  # players live when the fault began
    cut: dict[str, str] = field(default_factory=dict)  # session id -> why
    reconnected: int = 0  # of those, streams whose player had to open the stream again
    users: int = 0  # users that arrived during the window
    sessions_watched: int = 0
    bad_at: list[float] = field(default_factory=list)  # when a user or probe was refused
    good_at: list[float] = field(default_factory=list)  # when a probe user was served
    probe_failures: list[str] = field(default_factory=list)

    def refuse(self, why: str, at: float) -> None:
        self.refused.append(why)
        self.bad_at.append(at)

    def result(self, notes: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sessions_lost": len(self.lost),
            "users_refused": len(self.refused),
            "double_bookings": len(self.double),
            "stranded_sessions": len(self.stranded),
            "seconds_until_normal": (
                None if self.seconds_until_normal is None else round(self.seconds_until_normal, 1)
            ),
            "live_streams_cut": len(self.cut),
            "users": self.users,
            "sessions_watched": self.sessions_watched,
            "live_streams": self.streams,
            "live_streams_reopened": self.reconnected,
        }
        detail = {
            "lost": _sample(self.lost),
            "refused": _count(self.refused),
            "double": sorted(sorted(p) for p in self.double)[:5],
            "seen_twice": _sample(self.seen_twice),
            "stranded": _sample(self.stranded),
            "cut": _sample(self.cut),
            "probe_failures": _count([p.split(":")[0][:60] for p in self.probe_failures]),
            "fault": notes,
        }
        out["detail"] = {k: v for k, v in detail.items() if v}
        return out


def until_normal(healed: float, bad_at: list[float], good_at: list[float]) -> float | None:
    """Seconds from the fault's end to the last refusal (of a user or a probe) after
    which probes were served at least twice and nobody was refused again; 0 when
    nothing was refused after the end; None when service never settled so."""
    last_bad = max((b for b in bad_at if b >= healed), default=healed)
    if sum(1 for g in good_at if g > last_bad) < 2:
        return None
    return last_bad - healed


def _sample(reasons: dict[str, str], n: int = 5) -> dict[str, Any]:
    if not reasons:
        return {}
    return {"why": _count(list(reasons.values())), "examples": dict(list(reasons.items())[:n])}


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def lost_reason(status: int, body: Any, ended_by_user: bool) -> str | None:
    """Why a GET of a session the user still holds shows it lost, or None."""
    if ended_by_user:
        return None
    if status in (401, 403, 404):
        return f"http_{status}"
    if status == 200 and isinstance(body, dict) and body.get("state") == "ended":
        reason = body.get("end_reason")
        if reason != "client_ended":
            return f"ended:{reason}"
    return None


def stream_host(body: Any) -> str | None:
    """The instance a live session's stream points to: the instance id its signed
    token names (a private IP may be reused by a replacement), else the URL's IP."""
    if not isinstance(body, dict) or body.get("state") not in LIVE:
        return None
    stream = body.get("stream") or {}
    parts = str(stream.get("token") or "").split(".")
    if len(parts) == 4:
        try:
            fields = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            fields = ""
        if fields.count("|") == 4:
            return fields.split("|")[1]
    return stream_ip(body)


def stream_ip(body: Any) -> str | None:
    """The private IP in a session's stream URL (`.../i/{ip}/`)."""
    stream = (body or {}).get("stream") or {} if isinstance(body, dict) else {}
    url = str(stream.get("url") or "")
    if "/i/" not in url:
        return None
    return url.split("/i/", 1)[1].strip("/").split("/", 1)[0] or None


def shared_hosts(views: dict[str, Any]) -> list[frozenset[str]]:
    """Pairs of sessions that the API shows live on the same instance at once."""
    by_host: dict[str, list[str]] = {}
    for sid, body in views.items():
        host = stream_host(body)
        if host is not None:
            by_host.setdefault(host, []).append(sid)
    pairs = []
    for sids in by_host.values():
        for i, a in enumerate(sids):
            for b in sids[i + 1 :]:
                pairs.append(frozenset((a, b)))
    return pairs


def sessions_on_two_instances(instances: list[dict[str, Any]]) -> list[str]:
    """Session ids the ops API shows on more than one reserved/streaming instance."""
    seen: dict[str, int] = {}
    for inst in instances:
        sid = inst.get("session_id")
        if sid and inst.get("state") in ("reserved", "streaming"):
            seen[sid] = seen.get(sid, 0) + 1
    return sorted(s for s, n in seen.items() if n > 1)


def report(
    faults: dict[str, dict[str, Any]], setup: dict[str, Any], elapsed_s: float
) -> dict[str, Any]:
    """The run's last line."""
    ran = {k: v for k, v in faults.items() if "skipped" not in v}
    totals = {
        f: sum(int(v[f]) for v in ran.values())
        for f in FIGURES
        if f not in ("seconds_until_normal",)
    }
    worst = [v["seconds_until_normal"] for v in ran.values()]
    return {
        "bench": "chaos",
        "faults": faults,
        "totals": totals,
        "max_seconds_until_normal": None
        if any(w is None for w in worst)
        else max(worst, default=0.0),
        "all_zero": bool(ran) and all(v == 0 for v in totals.values()),
        "setup": setup,
        "elapsed_s": round(elapsed_s, 1),
    }


def well_formed(line: dict[str, Any]) -> list[str]:
    """What is wrong with a report line (empty when it has the promised shape)."""
    problems = []
    if line.get("bench") != "chaos" or not isinstance(line.get("faults"), dict):
        return ["not a chaos report"]
    for name, value in line["faults"].items():
        if "skipped" in value:
            if not isinstance(value["skipped"], str) or not value["skipped"]:
                problems.append(f"{name}: skipped without a reason")
            continue
        for fig in FIGURES:
            if fig not in value:
                problems.append(f"{name}: no {fig}")
            elif fig == "seconds_until_normal":
                if value[fig] is not None and not isinstance(value[fig], (int, float)):
                    problems.append(f"{name}: {fig} is {value[fig]!r}")
            elif not isinstance(value[fig], int) or value[fig] < 0:
                problems.append(f"{name}: {fig} is {value[fig]!r}")
    return problems
