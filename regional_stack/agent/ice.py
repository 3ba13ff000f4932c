"""The `peerConnectionOptions` the agent puts in each `config` message. Pure.

Both sides get TURN REST credentials (streamfleet/turn.py) signed with the
region's TURN secret and the agent's ICE transport policy (`relay` in every
stack), so Epic's unmodified frontend and an Unreal streamer connect relay-only
with nothing of their own to configure.
"""

from __future__ import annotations

from typing import Any

from regional_stack.agent.settings import AgentSettings
from streamfleet import turn
from streamfleet.tokens import StreamClaims

# The renderer's own TURN credential outlives any one session: the renderer
# connects once and waits, possibly for hours, for its next player.
RENDERER_TURN_TTL_S = 24 * 3600


def _options(settings: AgentSettings, name: str, expires_unix: int) -> dict[str, Any]:
    options: dict[str, Any] = {"iceTransportPolicy": settings.ice_transport_policy}
    secret = settings.turn_secret.get_secret_value()
    if settings.turn_uris and secret:
        options["iceServers"] = turn.ice_servers(settings.turn_uris, secret, name, expires_unix)
    return options


def streamer_options(settings: AgentSettings, now: float) -> dict[str, Any]:
    return _options(settings, settings.instance_id, int(now) + RENDERER_TURN_TTL_S)


def player_options(settings: AgentSettings, claims: StreamClaims) -> dict[str, Any]:
    """The session's ICE servers, as the session API returns them: username
    `"{expiry}:{session_id}"`, valid no longer than the stream token."""
    return _options(settings, claims.session_id, int(claims.expires_unix))
