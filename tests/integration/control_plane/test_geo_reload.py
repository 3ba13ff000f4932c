"""The geo-IP database is refreshed in place by a scheduled job: the control
plane picks up a new file, and starts without one (control_plane/geo.py)."""

from __future__ import annotations

import os
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from control_plane.geo import GeoLocator
from control_plane.placement import Location

ADDRESS = "81.10.1.2"


def write_db(path: Path, lat: float, lon: float, mtime: int) -> None:
    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-City", languages=["en"])
    writer.insert_network(
        IPSet(["81.10.0.0/16"]), {"location": {"latitude": lat, "longitude": lon}}
    )
    tmp = path.with_suffix(".tmp")
    writer.to_db_file(str(tmp))
    os.utime(tmp, (mtime, mtime))
    tmp.replace(path)  # as the refresh job does: an atomic rename


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_missing_database_then_first_download_then_refresh(tmp_path: Path) -> None:
    db, clock = tmp_path / "GeoLite2-City.mmdb", Clock()
    geo = GeoLocator(db, recheck_s=60, clock=clock)
    assert geo.locate(ADDRESS) is None  # not downloaded yet: no location, no crash

    write_db(db, 50.11, 8.68, mtime=1_000)
    clock.now = 30
    assert geo.locate(ADDRESS) is None  # not rechecked before recheck_s
    clock.now = 60
    assert geo.locate(ADDRESS) == Location(50.11, 8.68)

    write_db(db, 53.35, -6.26, mtime=2_000)
    clock.now = 121
    assert geo.locate(ADDRESS) == Location(53.35, -6.26)
    geo.close()


def test_no_database_configured_never_locates(tmp_path: Path) -> None:
    geo = GeoLocator(None)
    assert geo.locate(ADDRESS) is None
