"""Pool manager settings (environment prefix STREAMFLEET_POOL_); built once, passed down."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from regional_stack.pool.damping import DampingConfig
from regional_stack.pool.policies import (
    Bounds,
    BufferPolicy,
    MaxPolicy,
    Policy,
    PredictivePolicy,
    SchedulePolicy,
    StaticPolicy,
    Window,
)
from streamfleet.wire import RegionName


class WindowSetting(BaseModel):
    start: datetime
    end: datetime
    min_hot: int


class PoolSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMFLEET_POOL_", extra="ignore")

    control_plane_url: str = "http://127.0.0.1:8080"
    admin_token: SecretStr = SecretStr("")
    region: RegionName = "eu-central-1"
    asg_name: str = "streamfleet-gpu"
    aws_endpoint_url: str | None = None  # moto locally; unset in AWS
    metrics_host: str = "127.0.0.1"  # Prometheus /metrics; metrics_port 0 = off
    metrics_port: int = 0

    policy: Literal["static", "buffer", "schedule", "predictive", "composed"] = "composed"
    min_size: int = 0
    max_size: int = 600
    static_count: int = 10
    buffer_size: int = 5
    buffer_percent: float = 10.0
    schedule: list[WindowSetting] = []  # JSON list of {start, end, min_hot}; ISO times
    predictive_margin: float = 0.2
    predictive_sigmas: float = 2.0
    predictive_min_buffer: int = 2

    cold_lead_s: float = 300.0
    warm_lead_s: float = 75.0
    interval_s: float = 15.0
    scale_in_cooldown_s: float = 300.0
    hysteresis: int = 2
    hysteresis_percent: float = 5.0
    max_scale_in_step: int = 50

    fallback_instance_types: list[str] = []  # tried in order after the primary
    primary_instance_type: str = "g4dn.2xlarge"
    subnets: list[str] = []  # preference order; empty = the group's own order
    retry_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    constraint_hold_s: float = 120.0

    def build_policy(self) -> Policy:
        bounds = Bounds(self.min_size, self.max_size)
        windows = tuple(
            Window(w.start.timestamp(), w.end.timestamp(), w.min_hot) for w in self.schedule
        )
        predictive = PredictivePolicy(
            margin=self.predictive_margin,
            sigmas=self.predictive_sigmas,
            min_buffer=self.predictive_min_buffer,
            bounds=bounds,
        )
        schedule = SchedulePolicy(windows=windows, bounds=bounds)
        buffer = BufferPolicy(self.buffer_size, self.buffer_percent, bounds)
        policies: dict[str, Policy] = {
            "static": StaticPolicy(self.static_count, bounds),
            "buffer": buffer,
            "schedule": schedule,
            "predictive": predictive,
            "composed": MaxPolicy((predictive, schedule), bounds),
        }
        return policies[self.policy]

    def damping(self) -> DampingConfig:
        return DampingConfig(
            scale_in_cooldown_s=self.scale_in_cooldown_s,
            hysteresis=self.hysteresis,
            hysteresis_percent=self.hysteresis_percent,
            max_scale_in_step=self.max_scale_in_step,
        )

    def instance_types(self) -> list[str]:
        return [self.primary_instance_type, *self.fallback_instance_types]
