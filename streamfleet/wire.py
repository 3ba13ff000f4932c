"""Wire models of every JSON body of the HTTP APIs, both directions.

The one definition of each body shape (docs/design.md "Contracts"): the
control plane answers through these models, its OpenAPI document is generated
from them, and every client (agent, pool manager, `streamfleet status`, local
stack, benchmarks) parses with them. Identifier types come from
streamfleet.ids. Requests and ops answers are strict: unknown fields are
refused, strings are bounded.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamfleet import ids
from streamfleet.lifecycle import EndReason, InstanceState, SessionState

# Identifier types: the rule is streamfleet.ids's, so pydantic, the OpenAPI
# document and every other user agree by construction.
ClientId = Annotated[
    str, Field(pattern=ids.CLIENT_ID.json_pattern, description="a stable, random per-browser id")
]
ModelName = Annotated[str, Field(pattern=ids.MODEL_NAME.json_pattern)]
RegionName = Annotated[str, Field(pattern=ids.REGION.json_pattern)]
InstanceId = Annotated[str, Field(pattern=ids.INSTANCE_ID.json_pattern)]
SessionId = Annotated[str, Field(pattern=ids.SESSION_ID.json_pattern)]
Ipv4 = Annotated[str, Field(pattern=ids.IPV4.json_pattern)]
MAX_CONFIGURATION_BYTES = 4096


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictRequest(Strict):
    """A request body: strict types too, so `"yes"` is no bool and `"5"` no int.

    Bodies reach these models parsed by streamfleet.strict_json (finite numbers,
    unique keys, bounded depth); an enum field takes its value, as JSON spells it
    and nothing else.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CreateSessionRequest(StrictRequest):
    client_id: ClientId
    model: ModelName
    configuration: dict[str, Any] = Field(
        default_factory=dict, description="the scene's starting state"
    )
    latencies_ms: dict[RegionName, float] | None = Field(
        None, description="round trips the client measured to each region"
    )

    @field_validator("configuration")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v, separators=(",", ":"))) > MAX_CONFIGURATION_BYTES:
            raise ValueError(
                f"configuration must serialize to at most {MAX_CONFIGURATION_BYTES} bytes"
            )
        return v

    @field_validator("latencies_ms")
    @classmethod
    def _few(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None and len(v) > 32:
            raise ValueError("at most 32 regions")
        return v


class IceServer(BaseModel):
    urls: list[str]
    username: str
    credential: str


class Stream(BaseModel):
    url: str
    signaling_url: str
    token: str
    expires_at: str


class SessionView(BaseModel):
    session_id: SessionId
    state: SessionState
    session_secret: str | None = Field(None, description="only in the answer to create")
    region: RegionName | None = None
    stream: Stream | None = None
    ice_servers: list[IceServer] | None = None
    claim_expires_at: str | None = None
    position: int | None = None
    estimated_wait_s: int | None = None
    end_reason: EndReason | None = None


# Epochs are bounded far below 2**53 so Lua (doubles) and JSON carry them exactly.
MAX_EPOCH = 2**40
MaxEpoch = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_EPOCH,
        description="the highest fencing epoch this agent has been assigned (live or ended); "
        "the control plane never issues this instance an epoch at or below it, even after "
        "Redis lost data",
    ),
]


class ServedSession(StrictRequest):
    """The session an agent serves, as it knows it: what the control plane rebuilds
    after Redis lost data (docs/operations.md "Redis loses data")."""

    session_id: SessionId
    epoch: int = Field(ge=1, le=MAX_EPOCH)
    connected: bool = Field(description="a player has connected (the instance streams)")


class EndedSession(StrictRequest):
    """The session an agent last ended itself, repeated at every heartbeat: it
    settles the end when the agent's event was lost, and tells the control plane
    a session the agent ended from one it lost (which is re-placed)."""

    session_id: SessionId
    epoch: int = Field(ge=1, le=MAX_EPOCH)
    reason: Annotated[
        EndReason,
        Field(
            strict=False,  # JSON carries the value: an enum instance only from Python
            description="why the agent ended it; instance_lost: its renderer crashed (re-placed)",
        ),
    ]


class RegisterRequest(StrictRequest):
    """Bearer: the region's agent secret (a gate only); the proof is the identity document."""

    instance_id: InstanceId
    region: RegionName
    private_ip: Ipv4
    instance_type: str = Field("", max_length=64)
    version: str = Field("", max_length=64)
    identity_document: str = Field(
        max_length=4096, description="IMDS /latest/dynamic/instance-identity/document, verbatim"
    )
    identity_signature: str = Field(
        max_length=1024, description="IMDS /latest/dynamic/instance-identity/signature (base64)"
    )
    nonce: str = Field(
        pattern=r"^[A-Za-z0-9_-]{32,128}$",
        description="the agent's own random secret, bound at its first registration; "
        "every later registration of the instance must repeat it",
    )
    max_epoch: MaxEpoch = 0
    session: ServedSession | None = Field(
        None, description="the session this agent still serves (a registration after a 404)"
    )


class RegisterResponse(BaseModel):
    """The control plane's answer to register. It is the one source of the
    timeouts both planes enforce: the agent takes them from here."""

    instance_id: str
    state: InstanceState
    heartbeat_interval_s: float = Field(gt=0)
    claim_ttl_s: float = Field(gt=0, description="a client must connect within this")
    reconnect_window_s: float = Field(gt=0, description="a dropped client may return within this")
    idle_timeout_s: float = Field(gt=0, description="a session without user input ends after this")
    max_duration_s: float = Field(gt=0, description="a connected session ends after this")
    agent_token: str = Field(description="bearer of this instance's heartbeats and events")
    agent_token_expires_unix: int


class HeartbeatRequest(StrictRequest):
    instance_id: InstanceId
    region: RegionName
    state: Annotated[InstanceState, Field(strict=False)]
    session_id: str | None = Field(None, max_length=64)
    epoch: int | None = Field(None, ge=0, le=MAX_EPOCH)
    max_epoch: MaxEpoch = 0
    ended: EndedSession | None = None
    health: dict[str, float | int | str | bool | None] = Field(default_factory=dict)

    @field_validator("health")
    @classmethod
    def _bounded(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > 32:
            raise ValueError("at most 32 health figures")
        return v


class Assignment(BaseModel):
    session_id: str
    epoch: int
    claim_expires_unix: float | None


class HeartbeatResponse(BaseModel):
    state: InstanceState
    assignment: Assignment | None
    commands: list[Literal["drain", "end_session"]]
    agent_token: str = Field(description="the instance's agent token, renewed")
    agent_token_expires_unix: int


AgentEventType = Literal[
    "client_connected",
    "client_disconnected",
    "client_reconnected",
    "session_ended",
    "renderer_crashed",
    "ready",
]


class AgentEvent(StrictRequest):
    instance_id: InstanceId
    region: RegionName
    type: AgentEventType
    session_id: str | None = Field(None, max_length=64)
    epoch: int | None = Field(None, ge=0)
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class ConstraintRequest(StrictRequest):
    constrained: bool
    reason: str = Field("", max_length=200)


class DrainRequest(StrictRequest):
    force: bool = Field(False, description="end its session now (reason drained)")


# -- ops API answers (admin bearer) ------------------------------------------
# Strict like the requests: a field the server adds without adding it here fails
# the contract test and every client, instead of being silently ignored.


class RegionPool(Strict):
    """One region in `GET /v1/pools`."""

    instances: dict[InstanceState, int] = Field(description="instances per state, every state")
    queue_depth: int = Field(
        ge=0, description="waiting here (a session waits in every region it accepts)"
    )
    queued_here: int = Field(
        ge=0, description="queued sessions counted once, under the region nearest their head"
    )
    live_sessions: int = Field(ge=0, description="reserved + streaming instances")
    constrained: bool = Field(description="the region cannot grow (capacity or ops)")
    constraint_reason: str = Field("", max_length=200)
    arrivals_per_min: list[int] = Field(
        description="sessions that chose this region first, per minute, oldest first"
    )

    def count(self, *states: InstanceState | str) -> int:
        return sum(self.instances.get(InstanceState(s), 0) for s in states)


class PoolsView(Strict):
    """`GET /v1/pools`: every region the control plane serves, in its order."""

    regions: dict[RegionName, RegionPool]
    queued_sessions: int = Field(ge=0, description="distinct queued sessions")


class InstanceView(Strict):
    """One row of `GET /v1/pools/{region}/instances`."""

    instance_id: InstanceId
    state: InstanceState
    session_id: SessionId | None = Field(description="the session it serves, if any")
    private_ip: Ipv4 | None
    instance_type: str = Field(max_length=64)
    state_age_s: float = Field(description="seconds since it entered its state")
    heartbeat_age_s: float | None = Field(description="seconds since its last heartbeat")
    draining: bool = Field(description="ops asked it to drain")


class InstancesView(Strict):
    """`GET /v1/pools/{region}/instances`, ordered by instance id."""

    instances: list[InstanceView]


class DrainView(Strict):
    """`POST /v1/pools/{region}/instances/{instance_id}/drain` (202)."""

    instance_id: InstanceId
    state: InstanceState = Field(description="its state after the request")


class EndSessionView(Strict):
    """`POST /v1/admin/sessions/{session_id}/end` (202)."""

    ended_now: bool = Field(description="false when it had already ended")
    state: SessionState


# -- answers shared by every API ----------------------------------------------


class FieldError(Strict):
    field: str
    message: str


class ProblemDetail(Strict):
    """RFC 9457 problem details: every 4xx/5xx answer (application/problem+json)."""

    type: str = Field(description="a stable URI per kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    field: str | None = Field(None, description="the offending input, when there is one")
    errors: list[FieldError] | None = Field(None, description="every invalid field (422)")


class AgentEventReply(Strict):
    """`POST /v1/agents/events` (202)."""

    accepted: Literal[True]
    state: InstanceState | None = Field(
        None, description="the instance's state after the event (absent for `ready`)"
    )


class Health(Strict):
    """`GET /healthz` (200): the process is up and Redis answers."""

    status: Literal["ok"]
