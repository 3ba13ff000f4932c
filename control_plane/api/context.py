"""Typed application state: what handlers may reach, under web.AppKey."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from control_plane.api.attestation import Attestor
from control_plane.api.queue_feed import QueueFeed
from control_plane.broker import Broker
from control_plane.domain import RegionSnapshot
from control_plane.geo import GeoLocator, Network
from control_plane.session_secrets import SessionSecrets
from control_plane.settings import ControlPlaneSettings

if TYPE_CHECKING:  # metrics.py reads SERVICES from here
    from control_plane.api.metrics import Metrics


@dataclass
class Services:
    """Everything a request needs, built once per app in cleanup_ctx."""

    settings: ControlPlaneSettings
    broker: Broker
    geo: GeoLocator
    trusted: list[Network]
    keyring: dict[str, bytes]
    session_secrets: SessionSecrets
    metrics: Metrics
    attestor: Attestor
    queue_feed: QueueFeed
    snapshots: dict[str, RegionSnapshot] = field(default_factory=dict)

    @property
    def constrained(self) -> frozenset[str]:
        return frozenset(r for r, s in self.snapshots.items() if s.constrained)


SETTINGS = web.AppKey("settings", ControlPlaneSettings)
SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
