"""`ControlPlanePort` over the ops API (docs/contracts.md), with the admin bearer token.

Plain urllib: the pool manager is a synchronous loop around boto3, and one
request per pass does not need a connection pool.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pydantic import BaseModel

from regional_stack.pool.ports import InstanceRecord, PoolState, instance_records, pool_state
from streamfleet.wire import ConstraintRequest


class ControlPlaneError(RuntimeError):
    """The control plane refused or failed a request (status and body in the message)."""


class HttpControlPlane:
    def __init__(self, base_url: str, admin_token: str, timeout_s: float = 5.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"control plane URL must be http(s): {base_url!r}")
        self._base = base_url.rstrip("/")
        self._token = admin_token
        self._timeout = timeout_s

    def pool_state(self, region: str) -> PoolState:
        return pool_state(self._call("GET", "/v1/pools"), region)

    def instances(self, region: str) -> list[InstanceRecord]:
        return instance_records(self._call("GET", f"/v1/pools/{_q(region)}/instances"))

    def report_constraint(self, region: str, constrained: bool, reason: str) -> None:
        self._call(
            "PUT",
            f"/v1/pools/{_q(region)}/constraint",
            ConstraintRequest(constrained=constrained, reason=reason[:200]),
        )

    def drain(self, region: str, instance_id: str) -> None:
        self._call("POST", f"/v1/pools/{_q(region)}/instances/{_q(instance_id)}/drain")

    def _call(self, method: str, path: str, body: BaseModel | None = None) -> Any:
        data = None if body is None else body.model_dump_json().encode()
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise ControlPlaneError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise ControlPlaneError(f"{method} {path}: {exc.reason}") from exc
        except OSError as exc:  # read timeout or reset after connecting: not a URLError
            raise ControlPlaneError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        return json.loads(raw) if raw else None


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")
