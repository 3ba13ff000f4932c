"""Wire models of the HTTP APIs, shared by both planes (docs/contracts.md).

Requests are strict: unknown fields are refused, strings are bounded. The
OpenAPI document is generated from these models, so it cannot drift.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamfleet.lifecycle import EndReason, InstanceState

ClientId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9._:@-]{1,128}$", description="a stable, random per-browser id")
]
ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
RegionName = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
InstanceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
SessionId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}-[0-9a-f]{16}$")]
Ipv4 = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$")]
MAX_CONFIGURATION_BYTES = 4096


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateSessionRequest(Strict):
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
    session_id: str
    state: Literal["queued", "assigned", "connected", "ended"]
    session_secret: str | None = Field(None, description="only in the answer to create")
    region: str | None = None
    stream: Stream | None = None
    ice_servers: list[IceServer] | None = None
    claim_expires_at: str | None = None
    position: int | None = None
    estimated_wait_s: int | None = None
    end_reason: EndReason | None = None


class RegisterRequest(Strict):
    instance_id: InstanceId
    region: RegionName
    private_ip: Ipv4
    instance_type: str = Field("", max_length=64)
    version: str = Field("", max_length=64)


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


class HeartbeatRequest(Strict):
    instance_id: InstanceId
    region: RegionName
    state: InstanceState
    session_id: str | None = Field(None, max_length=64)
    epoch: int | None = Field(None, ge=0)
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


AgentEventType = Literal[
    "client_connected",
    "client_disconnected",
    "client_reconnected",
    "session_ended",
    "renderer_crashed",
    "ready",
]


class AgentEvent(Strict):
    instance_id: InstanceId
    region: RegionName
    type: AgentEventType
    session_id: str | None = Field(None, max_length=64)
    epoch: int | None = Field(None, ge=0)
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class ConstraintRequest(Strict):
    constrained: bool
    reason: str = Field("", max_length=200)


class DrainRequest(Strict):
    force: bool = Field(False, description="end its session now (reason drained)")
