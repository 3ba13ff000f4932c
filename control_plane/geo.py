"""Client IP and location: which address is the client's, and where it is."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from control_plane.placement import Location

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The TCP peer, unless it is a trusted proxy: then the right-most
    X-Forwarded-For entry that is not itself trusted. Entries left of it were
    written by the client and are ignored; a malformed entry stops the walk."""
    peer_ip = _ip(peer or "")
    if peer_ip is None:
        return None
    if not forwarded_for or not any(peer_ip in n for n in trusted):
        return str(peer_ip)
    for hop in reversed(forwarded_for.split(",")):
        hop_ip = _ip(hop)
        if hop_ip is None:
            return str(peer_ip)
        if not any(hop_ip in n for n in trusted):
            return str(hop_ip)
    return str(peer_ip)


class GeoLocator:
    """A GeoIP2/GeoLite2 City database; unknown and private addresses -> None."""

    def __init__(self, path: Path | None) -> None:
        self._reader: Any = None
        if path is not None:
            import geoip2.database

            self._reader = geoip2.database.Reader(str(path))

    def locate(self, ip: str | None) -> Location | None:
        if self._reader is None or ip is None:
            return None
        addr = _ip(ip)
        if addr is None or addr.is_private or addr.is_loopback or addr.is_reserved:
            return None
        import geoip2.errors

        try:
            city = self._reader.city(str(addr))
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        lat, lon = city.location.latitude, city.location.longitude
        if lat is None or lon is None:
            return None
        return Location(float(lat), float(lon))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
