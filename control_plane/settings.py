"""Every setting of the control plane, in one object built once at start.

Environment variables use the prefix STREAMFLEET_ (nested: STREAMFLEET_BROKER__CLAIM_TTL_S).
An optional JSON file (STREAMFLEET_CONFIG_FILE or --config) supplies defaults
that the environment overrides. Secrets are SecretStr: never printed or logged.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from control_plane.broker_settings import BrokerSettings
from streamfleet import ids
from streamfleet.tokens import parse_keyring


class RegionConfig(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}

    name: str
    geography: str = Field(description="e.g. eu, us: placement stays inside it first")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    router_url: str = Field(
        description="the region's router, e.g. https://eu-central-1.stream.example.com"
    )
    turn_uris: list[str] = Field(
        default_factory=list, description="turn:host:3478?transport=udp ..."
    )
    private_cidrs: list[str] = Field(
        default_factory=list,
        description="the region's instance subnets: an agent's private IP must lie in one",
    )

    @field_validator("private_cidrs")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(c)) for c in v]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not ids.REGION.matches(v):
            raise ValueError("region names look like eu-central-1")
        return v


def default_regions() -> list[RegionConfig]:
    rows = [
        ("eu-central-1", "eu", 50.11, 8.68),
        ("eu-west-1", "eu", 53.35, -6.26),
        ("us-east-1", "us", 38.90, -77.04),
        ("us-west-2", "us", 45.84, -119.70),
    ]
    return [
        RegionConfig(
            name=n,
            geography=g,
            lat=lat,
            lon=lon,
            router_url=f"http://127.0.0.1:{8001 + i}",
            turn_uris=[],
            # The local stack's loopback /16 of the region (simulators/local_stack/plan.py).
            private_cidrs=[f"127.{11 + i}.0.0/16"],
        )
        for i, (n, g, lat, lon) in enumerate(rows)
    ]


def default_event_loop() -> Literal["uvloop", "asyncio"]:
    """uvloop where it is installed (the server extra brings it): its transports and
    timers cost a fraction of asyncio's per request; plain asyncio elsewhere."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


class ControlPlaneSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STREAMFLEET_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    config_file: Path | None = Field(None, description="JSON file with defaults for these settings")
    http_host: str = Field("127.0.0.1", description="address to listen on")
    http_port: int = Field(8080, ge=0, le=65535, description="port to listen on")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default_factory=default_event_loop,
        description="the server's event loop (default: uvloop when installed)",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="processes sharing the port (SO_REUSEPORT; the kernel spreads "
        "connections); each is a full replica with its own /metrics",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis (or any Cluster node) URL"
    )
    redis_cluster: bool = Field(False, description="treat redis_url as a Redis Cluster")
    redis_max_connections: int = Field(512, ge=8, description="connections per Redis node")
    redis_sentinels: list[str] = Field(
        default_factory=list,
        description="JSON list of Redis Sentinels, host:port; when set, the primary of "
        "redis_sentinel_master is asked of them and followed through failovers, and "
        "redis_url gives only the data nodes' password, user, db and TLS (rediss://)",
    )
    redis_sentinel_master: str = Field(
        "streamfleet", description="the master name the sentinels monitor"
    )
    redis_sentinel_password: SecretStr = Field(
        SecretStr(""), description="the sentinels' own password (requirepass); empty: none"
    )
    redis_sentinel_check_s: float = Field(
        0.5, gt=0, description="how often the sentinels are asked whether the primary moved"
    )
    redis_health_check_interval_s: float = Field(
        1.0, ge=0, description="PING a pooled connection idle this long before using it (0: never)"
    )
    redis_socket_timeout_s: float = Field(
        5.0, gt=0, description="a Redis reply must arrive within this"
    )
    redis_connect_timeout_s: float = Field(
        2.0, gt=0, description="connecting to a Redis node must take no longer"
    )
    redis_retries: int = Field(
        8, ge=0, le=30,
        description="reconnect attempts (jittered backoff, at most 0.5 s each) before a call "
        "fails; a script whose reply was lost is never resent (docs/operations.md)",
    )  # fmt: skip
    regions: list[RegionConfig] = Field(
        default_factory=default_regions, description="JSON list of regions"
    )
    default_region_order: list[str] = Field(
        default_factory=list, description="order for clients with no location (default: as listed)"
    )
    cross_geography: Literal["never", "after_wait", "always"] = Field(
        "after_wait", description="when clients may be placed outside their geography"
    )
    geography_relax_after_s: float = Field(
        30.0, ge=0, description="queue wait before after_wait relaxes"
    )
    max_plausible_latency_ms: float = Field(
        2000.0, gt=0, description="client latencies above are ignored"
    )
    token_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="JSON object kid -> base64url key (32+ bytes)"
    )
    token_signing_kid: str = Field(
        "", description="kid that signs new tokens (default: the only/last one)"
    )
    turn_secret: SecretStr = Field(SecretStr(""), description="coturn static-auth-secret")
    agent_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="JSON object region -> agent shared secret"
    )
    agent_identity_keys: dict[str, str] = Field(
        default_factory=dict,
        description="JSON object region -> PEM certificate (or public key) the cloud signs "
        "instance identity documents with (AWS publishes one per region)",
    )
    agent_token_key: SecretStr = Field(
        SecretStr(""),
        description="base64url key (32+ bytes) of the per-instance agent tokens; session "
        "secrets are derived from it under a label of their own (docs/contracts.md)",
    )
    agent_token_ttl_s: float = Field(
        900.0, ge=30, description="an agent token lives this long; each heartbeat renews it"
    )
    ec2_endpoint_url: str | None = Field(
        None, description="EC2 endpoint the identity check asks (moto locally; unset on AWS)"
    )
    admin_token: SecretStr = Field(SecretStr(""), description="bearer token of the ops API")
    session_max_duration_s: float = Field(
        7200.0, gt=0, description="tokens and TURN credentials live this long"
    )
    session_idle_timeout_s: float = Field(
        600.0, gt=0, description="agents end a session without user input after this"
    )
    geoip_db: Path | None = Field(None, description="GeoLite2/GeoIP2 City .mmdb file")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="frontend origins allowed by CORS"
    )
    rate_limit_per_minute: int = Field(120, ge=1, description="session API requests per client IP")
    max_body_bytes: int = Field(16 * 1024, ge=1024, description="largest request body")
    header_timeout_s: float = Field(
        10.0, gt=0, description="a connection must send its request head within this"
    )
    body_timeout_s: float = Field(10.0, gt=0, description="a request body must arrive within this")
    max_connections_per_ip: int = Field(
        256, ge=1, description="open connections per peer address (raise it behind a proxy)"
    )
    reaper_interval_s: float = Field(1.0, gt=0, description="how often each replica reaps")
    sse_poll_s: float = Field(0.5, gt=0, description="how often a session's event stream looks")
    web_dir: Path | None = Field(
        None, description="serve the configurator and status pages from here"
    )
    demo_visit_from: bool = Field(False, description="honour X-Demo-Client-IP (local demo only!)")
    broker: BrokerSettings = Field(default_factory=BrokerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _JsonFileSource(settings_cls, env_settings))

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, v: list[str]) -> list[str]:
        for address in v:
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"redis_sentinels: {address!r} is not host:port")
        return v

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, v: str) -> str:
        if v == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed (pip install uvloop), or choose asyncio")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            ipaddress.ip_network(cidr, strict=False)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ControlPlaneSettings:
        if self.redis_cluster and self.redis_sentinels:
            raise ValueError("redis_cluster and redis_sentinels exclude each other")
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names) or not names:
            raise ValueError("regions must be a non-empty list of distinct names")
        for name in self.default_region_order:
            if name not in names:
                raise ValueError(f"default_region_order names unknown region {name}")
        for name in [*self.agent_secrets, *self.agent_identity_keys]:
            if name not in names:
                raise ValueError(f"agent_secrets/agent_identity_keys name unknown region {name}")
        token_key = self.agent_token_key.get_secret_value()
        if token_key:
            parse_keyring({"agent": token_key})  # base64url, 32+ bytes
        parse_keyring({k: v.get_secret_value() for k, v in self.token_keys.items()})
        if self.token_signing_kid and self.token_signing_kid not in self.token_keys:
            raise ValueError("token_signing_kid is not in token_keys")
        return self

    # -- derived ------------------------------------------------------------

    def to_env(self) -> dict[str, str]:
        """These settings as STREAMFLEET_* variables, secrets included (for a child process)."""
        data = json.loads(self.model_dump_json())
        for name in ("token_keys", "agent_secrets"):
            data[name] = {k: v.get_secret_value() for k, v in getattr(self, name).items()}
        for name in ("turn_secret", "admin_token", "agent_token_key", "redis_sentinel_password"):
            data[name] = getattr(self, name).get_secret_value()
        env = {}
        for key, value in data.items():
            if value is None or key == "config_file":
                continue
            env[f"STREAMFLEET_{key.upper()}"] = (
                value if isinstance(value, str) else json.dumps(value)
            )
        return env

    def missing_secrets(self) -> list[str]:
        missing = []
        if not self.token_keys:
            missing.append("STREAMFLEET_TOKEN_KEYS")
        if not self.turn_secret.get_secret_value():
            missing.append("STREAMFLEET_TURN_SECRET")
        if not self.agent_secrets:
            missing.append("STREAMFLEET_AGENT_SECRETS")
        if not self.admin_token.get_secret_value():
            missing.append("STREAMFLEET_ADMIN_TOKEN")
        if not self.agent_token_key.get_secret_value():
            missing.append("STREAMFLEET_AGENT_TOKEN_KEY")
        if not self.agent_identity_keys:
            missing.append("STREAMFLEET_AGENT_IDENTITY_KEYS")
        return missing

    @property
    def region_names(self) -> list[str]:
        return [r.name for r in self.regions]

    def region(self, name: str) -> RegionConfig:
        return next(r for r in self.regions if r.name == name)

    def keyring(self) -> dict[str, bytes]:
        return parse_keyring({k: v.get_secret_value() for k, v in self.token_keys.items()})

    def signing_kid(self) -> str:
        return self.token_signing_kid or list(self.token_keys)[-1]


class _JsonFileSource(PydanticBaseSettingsSource):
    """Defaults from a JSON file named by config_file (init/env win over it)."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        import os

        path = os.environ.get("STREAMFLEET_CONFIG_FILE")
        if not path:
            return {}
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of settings")
        return data
