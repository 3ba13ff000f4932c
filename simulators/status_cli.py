"""`streamfleet status`: the ops status page as a table in the terminal.

Reads the ops API with the admin token: `GET /v1/pools` for the per-region
counts, `GET /v1/pools/{region}/instances` for one row per instance; both are
validated into streamfleet.wire's models (PoolsView, InstancesView), the shapes
the control plane answers with. `render` is pure, so the table is tested
without I/O.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from simulators.local_stack.state import UnsafeStateDir, running_stacks
from streamfleet.lifecycle import InstanceState
from streamfleet.wire import InstancesView, InstanceView, PoolsView, RegionPool

M = TypeVar("M", bound=BaseModel)

# Every lifecycle state but `terminated` (gone, not worth a column).
STATES = tuple(s for s in InstanceState if s is not InstanceState.TERMINATED)
INSTANCE_COLUMNS = ("instance", "state", "private ip", "session", "in state", "heartbeat")


class StatusError(RuntimeError):
    """The control plane could not be read; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print every region's instances, queue and sessions from the ops API. With no URL\n"
        "and token given, it reads them from the running `streamfleet up` of this user."
    )
    parser.add_argument(
        "--control-plane-url",
        default=os.environ.get("STREAMFLEET_CONTROL_PLANE_URL"),
        help="control plane base URL (env STREAMFLEET_CONTROL_PLANE_URL; "
        "default: the running `streamfleet up`, else http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--admin-token",
        default=None,
        help="ops API bearer token (default: env STREAMFLEET_ADMIN_TOKEN, "
        "else the running `streamfleet up`'s)",
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    parser.add_argument(
        "--watch", type=float, metavar="SECONDS", help="redraw every SECONDS until Ctrl-C"
    )


@dataclass(frozen=True)
class RegionStatus:
    pool: RegionPool
    instances: list[InstanceView]

    def as_json(self) -> dict[str, object]:
        return {
            **self.pool.model_dump(mode="json"),
            "list": [i.model_dump(mode="json") for i in self.instances],
        }


def fetch(url: str, token: str, path: str, model: type[M], timeout: float = 5.0) -> M:
    request = urllib.request.Request(
        url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return model.model_validate_json(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise StatusError(
                f"the control plane refused the admin token (HTTP {exc.code})"
            ) from exc
        raise StatusError(f"{path}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise StatusError(f"cannot reach {url}: {exc}") from exc
    except ValidationError as exc:
        raise StatusError(f"{path}: the answer breaks the ops API contract: {exc}") from exc


def collect(url: str, token: str) -> dict[str, RegionStatus]:
    """Every region's pool figures and instances, in the control plane's order."""
    pools = fetch(url, token, "/v1/pools", PoolsView).regions
    return {
        region: RegionStatus(
            pool, fetch(url, token, f"/v1/pools/{region}/instances", InstancesView).instances
        )
        for region, pool in pools.items()
    }


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def render(regions: Mapping[str, RegionStatus]) -> str:
    """The status as text: one summary table, then each region's instances."""
    header = ["region", *STATES, "queue", "sessions", "constrained"]
    rows = [
        [
            name,
            *(str(r.pool.count(s)) for s in STATES),
            str(r.pool.queued_here),  # each waiting session once, not once per region
            str(r.pool.live_sessions),
            (r.pool.constraint_reason or "yes") if r.pool.constrained else "no",
        ]
        for name, r in regions.items()
    ]
    out = table(header, rows)
    for name, r in regions.items():
        out += ["", f"{name}:"]
        if not r.instances:
            out.append("  no instances")
            continue
        inst_rows = [
            [
                i.instance_id,
                i.state.value
                + (" (draining)" if i.draining and i.state is not InstanceState.DRAINING else ""),
                i.private_ip or "",
                i.session_id or "",
                age(i.state_age_s),
                age(i.heartbeat_age_s),
            ]
            for i in r.instances
        ]
        out += ["  " + line for line in table(INSTANCE_COLUMNS, inst_rows)]
    return "\n".join(out)


def target(url: str | None, token: str | None) -> tuple[str, str]:
    """The control plane to read and its token: as given, else a running `streamfleet up`."""
    if url and token:
        return url, token
    stacks = running_stacks()
    if url:
        stacks = [s for s in stacks if s["control_plane_url"].rstrip("/") == url.rstrip("/")]
    if len(stacks) > 1:
        urls = ", ".join(s["control_plane_url"] for s in stacks)
        raise StatusError(
            f"several `streamfleet up` stacks run ({urls}); pick one with --control-plane-url"
        )
    if stacks:
        return stacks[0]["control_plane_url"], token or stacks[0]["admin_token"]
    if not token:
        raise StatusError(
            "no running `streamfleet up` found; set --admin-token or STREAMFLEET_ADMIN_TOKEN"
        )
    return url or "http://127.0.0.1:8080", token


def run(args: argparse.Namespace) -> int:
    try:
        url, token = target(
            args.control_plane_url, args.admin_token or os.environ.get("STREAMFLEET_ADMIN_TOKEN")
        )
    except (StatusError, UnsafeStateDir) as exc:
        print(f"streamfleet status: {exc}", file=sys.stderr)
        return 2
    while True:
        try:
            regions = collect(url, token)
        except StatusError as exc:
            print(f"streamfleet status: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({n: r.as_json() for n, r in regions.items()}, indent=2))
        else:
            if args.watch:
                print("\033[H\033[2J", end="")  # clear the terminal between redraws
            print(render(regions))
        if not args.watch:
            return 0
        time.sleep(args.watch)
