"""Redis high-availability settings: Sentinel addresses, exclusivity, secrets kept secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from control_plane.redis_client import KEEPALIVE, connection_options
from control_plane.settings import ControlPlaneSettings


@pytest.mark.parametrize("address", ["127.0.0.1", ":26379", "host:0", "host:port", "h:70000"])
def test_a_sentinel_is_host_and_port(address: str) -> None:
    with pytest.raises(ValidationError, match="redis_sentinels"):
        ControlPlaneSettings(redis_sentinels=[address])


def test_sentinel_and_cluster_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="exclude each other"):
        ControlPlaneSettings(redis_cluster=True, redis_sentinels=["127.0.0.1:26379"])


def test_sentinel_settings_reach_a_child_process_and_hide_the_password() -> None:
    settings = ControlPlaneSettings(
        redis_sentinels=["127.0.0.1:26379", "127.0.0.2:26380"],
        redis_sentinel_master="m1",
        redis_sentinel_password="sentinel-pw",
    )
    assert "sentinel-pw" not in repr(settings)
    env = settings.to_env()
    assert env["STREAMFLEET_REDIS_SENTINEL_PASSWORD"] == "sentinel-pw"
    assert env["STREAMFLEET_REDIS_SENTINELS"] == '["127.0.0.1:26379", "127.0.0.2:26380"]'
    assert env["STREAMFLEET_REDIS_SENTINEL_MASTER"] == "m1"


def test_connections_are_health_checked_and_kept_alive() -> None:
    options = connection_options(
        ControlPlaneSettings(redis_health_check_interval_s=2, redis_retries=3)
    )
    assert options["health_check_interval"] == 2
    assert options["socket_keepalive"] and options["socket_keepalive_options"] == KEEPALIVE
    assert options["retry"].get_retries() == 3
