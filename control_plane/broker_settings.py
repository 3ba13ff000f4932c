"""Timeouts and limits of the broker. All durations in seconds."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BrokerSettings(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}

    claim_ttl_s: float = Field(90.0, gt=0, description="client must connect within this")
    reconnect_window_s: float = Field(
        60.0, gt=0, description="a dropped client may return within this"
    )
    heartbeat_interval_s: float = Field(5.0, gt=0, description="agents heartbeat this often")
    missed_heartbeats: int = Field(3, ge=1, description="an instance is lost after this many")
    queue_timeout_s: float = Field(600.0, gt=0, description="a queued session ends after this")
    ended_retention_s: float = Field(
        3600.0, gt=0, description="ended sessions stay readable this long"
    )
    avg_session_s: float = Field(
        300.0, gt=0, description="assumed session length while no service rate is observed"
    )
    queue_rate_window_s: float = Field(
        300.0, gt=0, description="wait estimates use the queue heads served in this window"
    )
    outbox_grace_s: float = Field(
        2.0, gt=0, description="a follow-up older than this is finished by the reaper"
    )
    placing_grace_s: float = Field(
        10.0,
        gt=0,
        description="a create journaled longer ago than this is finished by the reaper "
        "(longer than the outbox grace: a slow caller under load is not raced)",
    )
    instance_retention_s: float = Field(
        3600.0, gt=0, description="lost and terminated instances are forgotten this long after"
    )
    watch_gap_s: float | None = Field(
        None,
        gt=0,
        description="a reaper pass later than this after the region's previous one restarts "
        "the lost-instance watch (default: one heartbeat interval; never less than two "
        "reaper intervals)",
    )
    max_replacements: int = Field(
        3,
        ge=0,
        description="a session whose instance is lost is re-placed at most this often, "
        "then ends as instance_lost",
    )
    max_inflight: int = Field(256, ge=1, description="Redis calls in flight per process")
    reap_batch: int = Field(500, ge=1, description="items per kind per reaper call")

    @property
    def lost_after_s(self) -> float:
        return self.heartbeat_interval_s * self.missed_heartbeats

    @property
    def watch_gap(self) -> float:
        """`watch_gap_s`, else one heartbeat interval: a pause shorter than that
        leaves a live agent's last heartbeat younger than the timeout when the
        reaper resumes (with `missed_heartbeats` >= 3, one interval to spare)."""
        return self.watch_gap_s if self.watch_gap_s is not None else self.heartbeat_interval_s
