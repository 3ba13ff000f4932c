"""Every Redis key name, built here and nowhere else.

Two kinds of hash tag keep what changes together in one slot, so the same
scripts run on a single Redis and on Redis Cluster:

* `{<region>}` — everything about one region's instances and its queue, in
  fixed keys (hashes keyed by instance id), so a script that picks "some
  ready instance" still touches only keys passed in KEYS.
* `{c:<12 hex>}` — one client's live-session pointer and its sessions. The
  session id embeds the client hash, so both keys derive from the id alone.
"""

from __future__ import annotations

import hashlib
import secrets

from streamfleet import ids

PREFIX = "sf"
_CLIENT_HASH_HEX = 32

# Order matters: every region script receives exactly these keys in this order
# (control_plane/lua/_region.lua names them).
REGION_KEY_NAMES = (
    "state",  # H iid -> InstanceState
    "epoch",  # H iid -> fencing epoch (increments per assignment)
    "sess",  # H iid -> session id it serves
    "ip",  # H iid -> private IP
    "since",  # H iid -> ms when it entered its state
    "drain",  # H iid -> "1" when ops asked it to drain
    "ready",  # Z iid -> ms it became ready (oldest served first)
    "hb",  # Z iid -> ms of last heartbeat
    "claims",  # Z iid -> claim deadline ms (reserved, client not yet connected)
    "disc",  # Z iid -> reconnect deadline ms (client gone)
    "queue",  # Z session id -> global arrival ticket
    "qdl",  # Z session id -> queue deadline ms
    "outbox",  # Z "op|..." -> ms: session-side follow-ups this region owes
    "meta",  # H region facts: constrained, reason
    "info",  # H iid -> JSON {instance_type, version}; iid|nonce; iid|owed (unsettled entry)
    "gone",  # Z iid -> ms it became lost or terminated (forgotten after the retention)
    "counts",  # H state -> instances in it, kept by set_state; "v" = "1" once complete
)


def region_tag(region: str) -> str:
    return "{" + region + "}"


def region_keys(region: str) -> list[str]:
    tag = region_tag(region)
    return [f"{PREFIX}:{tag}:{name}" for name in REGION_KEY_NAMES]


def region_key(region: str, name: str) -> str:
    # Outside the scripts' KEYS: arrivals per minute, when queue heads were
    # served, and the placements in flight (sessions whose create has not finished).
    if name not in REGION_KEY_NAMES and name not in ("arrivals", "served", "placing"):
        raise KeyError(name)
    return f"{PREFIX}:{region_tag(region)}:{name}"


def client_hash(client_id: str) -> str:
    return hashlib.sha256(client_id.encode()).hexdigest()[:_CLIENT_HASH_HEX]


def new_session_id(client_id: str) -> str:
    return f"{client_hash(client_id)}-{secrets.token_hex(8)}"


def _client_tag(chash: str) -> str:
    return "{c:" + chash[:12] + "}"


def session_keys(session_id: str) -> list[str]:
    """[client pointer, session hash] — the KEYS of every session script."""
    if not ids.is_session_id(session_id):
        raise ValueError(f"not a session id: {session_id!r}")
    chash = session_id.split("-", 1)[0]
    tag = _client_tag(chash)
    return [f"{PREFIX}:{tag}:client:{chash}", f"{PREFIX}:{tag}:session:{session_id}"]


def missing_key(session_id: str) -> str:
    """When a read first found the session missing (session_restore.lua waits one
    heartbeat period from then: an agent may still report it). The session's slot."""
    chash = session_id.split("-", 1)[0]
    return f"{PREFIX}:{_client_tag(chash)}:missing:{session_id}"


def ticket_key() -> str:
    """Global arrival counter: a queue ticket orders arrivals across regions."""
    return f"{PREFIX}:{{queue}}:ticket"


def region_ratelimit_key(region: str, bucket: str) -> str:
    """The session API's request counter of one client IP (`bucket`), kept in the
    region its create ranks first, so region_place counts it in the same call
    (one slot). A client steering its ranking between N regions has N budgets."""
    return f"{PREFIX}:{region_tag(region)}:rl:{bucket}"
