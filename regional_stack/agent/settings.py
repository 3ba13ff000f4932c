"""Agent settings: one pydantic-settings object, environment prefix STREAMFLEET_AGENT_."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamfleet.ids import is_canonical_ipv4
from streamfleet.tokens import parse_keyring

# `{streamer_url}` and friends are filled in by the supervisor; see docs/agent.md.
DEFAULT_RENDERER_COMMAND = (
    f"{shlex.quote(sys.executable)} -m regional_stack.renderer.stub "
    "--signalling-url {streamer_url} --width {width} --height {height} --fps {fps}"
)


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMFLEET_AGENT_", extra="ignore")

    control_plane_url: str = "http://127.0.0.1:8080"
    region: str = "eu-central-1"
    secret: SecretStr = Field(
        default=SecretStr(""),
        description="the region's agent secret: gates registration only; the instance "
        "proves itself with its identity document",
    )
    imds_url: str = Field(
        "http://169.254.169.254", description="instance metadata service (identity document)"
    )
    nonce_file: str = Field(
        "", description="owner-only file keeping the registration nonce across restarts"
    )
    instance_id: str = "i-local0001"
    private_ip: str = "127.0.0.1"
    port: int = 8700
    metrics_port: int = 0  # Prometheus /metrics on private_ip:metrics_port; 0 = off
    instance_type: str = "g4dn.2xlarge"
    token_keys: dict[str, str] = Field(
        default_factory=dict, description="JSON object kid -> base64url key, as the control plane"
    )
    version: str = "0.1.0"

    # Renderer (the stub by default; an Unreal Pixel Streaming app in production).
    renderer_command: str = DEFAULT_RENDERER_COMMAND
    streamer_host: str = "127.0.0.1"
    streamer_port: int = 8888
    render_width: int = 320
    render_height: int = 180
    render_fps: int = 30
    renderer_ready_timeout_s: float = 60.0
    renderer_restart_backoff_s: float = 1.0
    # A player whose token names an assignment newer than any here, while the
    # renderer restarts (after the last session, or a crash), is held this long
    # (at most until its token expires) for the renderer to be ready, instead of
    # being refused: the control plane hands the next user an instance as soon as
    # its last session ends. Then 503 `not_ready`, which players retry.
    assignment_wait_s: float = Field(10.0, ge=0)

    # ICE for the renderer side. The player gets its own from the session API.
    turn_uris: list[str] = Field(default_factory=list)
    turn_secret: SecretStr = SecretStr("")
    ice_transport_policy: Literal["all", "relay"] = "all"

    # Until the first registration answer; the control plane's value wins. The
    # session timeouts (claim TTL, reconnect window, idle, maximum duration)
    # come only from the control plane's registration answer, so the two planes
    # cannot disagree; old STREAMFLEET_AGENT_* variables for them are ignored.
    heartbeat_interval_s: float = 5.0
    tick_interval_s: float = 0.2

    player_assets_dir: str | None = None

    # The player side's edge (streamfleet.edge): a request head must arrive
    # within this, and one peer (the region's router, a player) holds at most
    # this many connections.
    header_timeout_s: float = Field(10.0, gt=0)
    max_connections_per_ip: int = Field(64, ge=1)

    @field_validator("private_ip")
    @classmethod
    def _ipv4(cls, v: str) -> str:
        if not is_canonical_ipv4(v):
            raise ValueError("private_ip must be a dotted-quad IPv4 address")
        return v

    @field_validator("token_keys", mode="before")
    @classmethod
    def _keys_json(cls, v: object) -> object:
        return json.loads(v) if isinstance(v, str) else v

    @field_validator("token_keys")
    @classmethod
    def _keys_valid(cls, v: dict[str, str]) -> dict[str, str]:
        parse_keyring(v)
        return v

    def keyring(self) -> dict[str, bytes]:
        return parse_keyring(self.token_keys)

    def streamer_url(self) -> str:
        return f"ws://{self.streamer_host}:{self.streamer_port}/"
