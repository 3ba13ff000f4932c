"""Client IP and location: which address is the client's, and where it is."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from control_plane.placement import Location

log = logging.getLogger("streamfleet.geo")

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
    """A GeoIP2/GeoLite2 City database; unknown and private addresses -> None.

    The file is refreshed in place by a scheduled job (docs/deploy.md, "Geo-IP"),
    so it is re-read when its modification time changes, checked at most every
    `recheck_s`. A configured file that does not exist yet (the first download
    still running) means no locations until it appears, not a crash.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        recheck_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader: Any = None
        self._path = path
        self._recheck_s = recheck_s
        self._clock = clock
        self._mtime: float | None = None
        self._checked_at = float("-inf")
        self._refresh()

    def _refresh(self) -> None:
        self._checked_at = self._clock()
        if self._path is None:
            return
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            if self._reader is None:
                log.warning("geo-IP database %s not there yet: no locations", self._path)
            return
        if mtime == self._mtime:
            return
        import geoip2.database

        reader = geoip2.database.Reader(str(self._path))
        old, self._reader, self._mtime = self._reader, reader, mtime
        log.info("geo-IP database %s loaded (%s)", self._path, reader.metadata().database_type)
        if old is not None:
            old.close()

    def locate(self, ip: str | None) -> Location | None:
        if self._clock() - self._checked_at >= self._recheck_s:
            self._refresh()
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
